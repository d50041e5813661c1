import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunResult } from '../../src/config/result.js';
import { SMOKE_STEPS } from '../../src/lanes/smoke.js';
import { cli, REPO } from '../helpers/cli.js';
import { processesMentioning } from '../helpers/procs.js';

/**
 * The main job end to end on six real guests, then each negative control against the same
 * cluster: every one must turn exactly its step red with the cause in the message.
 */
const E2E = path.join(REPO, 'work', 'e2e-smoke');
const env = { PHOTON_VM_DIR: path.join(E2E, 'state'), PHOTON_CLUSTER_VDE_SWITCH_DIR: path.join(E2E, 'vde') };
/** CLI children get SIGTERM (and unwind what they started) before their test times out. */
const run = (args: string[], timeout = 2_300_000) => cli(['--json', ...args], { env, timeout });
const latest = () => RunResult.parse(JSON.parse(readFileSync(path.join(REPO, 'work', 'smoke', 'latest', 'result.json'), 'utf8')));

describe('smoke lane (six real guests)', () => {
  afterAll(async () => {
    await cli(['stop', '--timeout', '30'], { env, timeout: 300_000 });
    expect(processesMentioning(E2E)).toEqual([]);
  }, 400_000);

  it('fresh-smoke goes green with the seven steps, evidence and junit', async () => {
    const r = await run(['fresh-smoke', '--keep']);
    const res = latest();
    expect(r.exitCode, `${res.steps.map((s) => `${s.name}: ${s.status} ${s.error ?? ''}`).join('\n')}\n${r.stderr.slice(-3000)}`).toBe(0);
    expect(res.success).toBe(true);
    expect(res.steps.map((s) => [s.name, s.status])).toEqual(SMOKE_STEPS.map((s) => [s, 'passed']));
    expect(res.events.map((e) => e.kind)).toEqual(expect.arrayContaining(['fault', 'heal']));
    const dir = path.join(REPO, 'work', 'smoke', 'latest');
    for (const f of ['junit.xml', 'run.log', 'fault.json', 'external.json', 'flaredb-replication.txt'])
      expect(existsSync(path.join(dir, f)), f).toBe(true);
    expect(readFileSync(path.join(dir, 'junit.xml'), 'utf8')).toMatch(/tests="7" failures="0"/);
  }, 2_400_000);

  const controls: [string, string, RegExp][] = [
    ['unit-masked', 'readiness', /node02: expected unit\(s\) cannot start: iam\.service is masked/],
    ['flaredb-standby-stopped', 'control-plane-formation', /not streaming: node03/],
    ['iam-wrong-key', 'iam-tokens', /was refused by node03 .*invalid signature/],
  ];
  for (const [inject, step, cause] of controls) {
    it(`--inject ${inject} turns ${step} red and names the cause, then heals`, async () => {
      const r = await run(['smoke', '--inject', inject], 840_000);
      expect(r.exitCode).toBe(1);
      const res = latest();
      const failed = res.steps.find((s) => s.status === 'failed');
      expect(failed?.name).toBe(step);
      expect(failed?.error).toMatch(cause);
      expect(res.events.filter((e) => e.kind === 'heal').map((e) => e.name)).toContain(`inject ${inject}`);
    }, 900_000);
  }
});
