import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadProfile } from '../../src/config/load-profile.js';
import { clusterPaths } from '../../src/config/paths.js';
import { CheckFailed, UsageError } from '../../src/core/errors.js';
import type { RunResult } from '../../src/core/result.js';
import type { FaultEntry } from '../../src/faults/fault.js';
import { hostLane, type LaneEnv } from '../../src/lanes/lane.js';
import { planSteps } from '../../src/lanes/plan.js';
import { LANES } from '../../src/lanes/registry.js';
import { runLane } from '../../src/lanes/runner.js';
import { smoke } from '../../src/lanes/smoke.js';
import { cli } from '../helpers/cli.js';

describe('step plans', () => {
  it('--only keeps the steps a selected step needs, transitively', () => {
    const plan = planSteps(smoke, { only: ['external-entrypoints'] });
    expect(plan.filter((p) => !p.skip).map((p) => p.name)).toEqual(['readiness', 'replicated-state', 'external-entrypoints']);
    expect(plan.find((p) => p.name === 'iam-tokens')?.skip).toMatch(/skipped by request \(--only external-entrypoints\)/);
  });

  it('--skip leaves out a step and every step that needs it', () => {
    const plan = planSteps(smoke, { skip: ['replicated-state'] });
    expect(plan.filter((p) => p.skip).map((p) => p.name)).toEqual(['replicated-state', 'external-entrypoints']);
    expect(plan.find((p) => p.name === 'external-entrypoints')?.skip).toMatch(/needs replicated-state/);
  });

  it('refuses unknown steps and controls, and a control whose step does not run (exit 2, naming them)', () => {
    expect(() => planSteps(smoke, { only: ['readines'] })).toThrow(UsageError);
    expect(() => planSteps(smoke, { only: ['readines'] })).toThrow(/--only readines: no such step in smoke \(steps: readiness, /);
    expect(() => planSteps(smoke, { inject: ['nope'] })).toThrow(/--inject nope: smoke has no such negative control/);
    expect(() => planSteps(smoke, { only: ['replicated-state'], inject: ['iam-wrong-key'] })).toThrow(
      /breaks iam-tokens, which this run leaves out/,
    );
  });

  it('every registered lane names only its own steps in needs and controls', () => {
    for (const lane of LANES) {
      const names = lane.steps.map((s) => s.name);
      expect(new Set(names).size, lane.name).toBe(names.length);
      for (const s of lane.steps) for (const n of s.needs ?? []) expect(names, `${lane.name}/${s.name} needs ${n}`).toContain(n);
      for (const [c, ctl] of Object.entries(lane.controls)) expect(names, `${lane.name} --inject ${c}`).toContain(ctl.breaks);
    }
  });

  it("a control must name one of its lane's steps (a type error otherwise)", () => {
    const lane = hostLane<LaneEnv>()({
      name: 't',
      description: 't',
      kind: 'host',
      context: (env) => env,
      steps: [{ name: 'one', proves: 'x', run: async () => undefined }],
      controls: {
        c: {
          description: 'd',
          // @ts-expect-error: 'two' is not a step of this lane
          breaks: 'two',
          fault: () => ({ kind: 'k', name: 'k', targets: [], invoke: async () => {}, heal: async () => {} }),
        },
      },
    });
    expect(lane.steps).toHaveLength(1);
  });
});

describe('the runner, on a host lane with no guests', () => {
  const profile = loadProfile('lab');
  const healed: string[] = [];
  const lane = hostLane<LaneEnv & { seen: string[] }>()({
    name: 'toy',
    description: "a lane for the runner's own tests",
    kind: 'host',
    context: (env) => ({ ...env, seen: [] }),
    steps: [
      { name: 'first', proves: 'runs', run: async (ctx) => void ctx.seen.push('first') },
      {
        name: 'second',
        proves: 'fails when broken',
        needs: ['first'],
        run: async (ctx) => {
          if (ctx.seen.includes('broken')) throw new CheckFailed('second: the toy is broken');
          return 'fine';
        },
      },
      { name: 'third', proves: 'runs last', run: async () => 'done' },
    ],
    controls: {
      break: {
        description: 'break the toy',
        breaks: 'second',
        fault: (ctx) => ({
          kind: 'toy-break',
          name: 'toy-break',
          targets: ['toy'],
          invoke: async () => void ctx.seen.push('broken'),
          heal: async () => void healed.push('toy-break'),
        }),
      },
    },
  });
  const invoke = (o: { inject?: string[]; only?: string[] }) => {
    const workRoot = mkdtempSync(path.join(os.tmpdir(), 'uc-runner-'));
    return runLane({ lane, commandLine: 'toy', profile, paths: clusterPaths(workRoot, 'lab'), workRoot, options: {}, ...o });
  };
  const read = (dir: string) => ({
    result: JSON.parse(readFileSync(path.join(dir, 'result.json'), 'utf8')) as RunResult,
    faults: JSON.parse(readFileSync(path.join(dir, 'faults.json'), 'utf8')) as FaultEntry[],
  });

  it('a negative control turns its step red, the rest are skipped after the failure, and the final heal runs', async () => {
    const out = await invoke({ inject: ['break'] });
    expect(out.code).toBe(1);
    const { result, faults } = read(out.dir);
    expect(result.steps.map((s) => `${s.name}:${s.status}${s.skipped ? `:${s.skipped}` : ''}`)).toEqual([
      'first:passed',
      'second:failed',
      'third:skipped:failure',
    ]);
    expect(result.steps[1]!.error).toBe('second: the toy is broken');
    expect(faults).toEqual([
      expect.objectContaining({
        name: 'toy-break',
        heal: 'healed',
        detail: expect.objectContaining({ negativeControl: 'break', breaks: 'second' }),
      }),
    ]);
    expect(result.events.map((e) => `${e.kind}:${e.name}`)).toEqual(['fault:toy-break', 'heal:toy-break']);
    expect(healed).toContain('toy-break');
  });

  it('steps left out on request do not fail the run', async () => {
    const out = await invoke({ only: ['second'] });
    expect(out.code).toBe(0);
    const { result } = read(out.dir);
    expect(result.steps.map((s) => `${s.name}:${s.status}`)).toEqual(['first:passed', 'second:passed', 'third:skipped']);
    expect(result.success).toBe(true);
  });
});

describe('lanes on the command line', () => {
  it('`lanes --json` lists smoke and baremetal-iso with their steps and controls', async () => {
    const r = await cli(['--json', 'lanes']);
    expect(r.exitCode, r.stderr).toBe(0);
    const lanes = (
      JSON.parse(r.stdout) as {
        lanes: { name: string; command: string; fresh?: string; steps: { name: string }[]; controls: { name: string; breaks: string }[] }[];
      }
    ).lanes;
    const byCommand = new Map(lanes.map((l) => [l.command, l]));
    expect(byCommand.get('smoke')).toMatchObject({ fresh: 'fresh-smoke' });
    expect(byCommand.get('smoke')!.steps.map((s) => s.name)).toEqual(smoke.steps.map((s) => s.name));
    expect(byCommand.get('smoke')!.controls).toEqual(
      expect.arrayContaining([{ name: 'unit-masked', breaks: 'readiness', description: expect.any(String) }]),
    );
    expect(byCommand.get('baremetal-iso')!.steps.map((s) => s.name)).toEqual([
      'installer-image',
      'deployer',
      'install',
      'first-boot',
      'desired-system',
    ]);
    expect(byCommand.get('baremetal-iso')!.controls.map((c) => `${c.name}>${c.breaks}`)).toEqual([
      'bad-disk-id>install',
      'unhealthy-system>desired-system',
    ]);
    expect([...byCommand.keys()]).toEqual(
      expect.arrayContaining(['hardware-smoke preflight', 'hardware-smoke run', 'hardware-smoke capture']),
    );
  });

  it('`smoke --list-steps` prints the steps and exits without touching anything', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'uc-list-'));
    const r = await cli(['--work-root', work, 'smoke', '--list-steps']);
    expect(r.exitCode).toBe(0);
    expect(
      r.stdout
        .split('\n')
        .filter((l) => /^\s+\d+\. /.test(l))
        .map((l) => l.trim().split(/\s+/)[1]),
    ).toEqual(smoke.steps.map((s) => s.name));
    expect(r.stdout).toContain('--inject unit-masked');
  });

  it('a bad step name is exit 2 naming the steps, before any run dir exists', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'uc-list-'));
    const r = await cli(['--work-root', work, 'smoke', '--only', 'readines']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('--only readines: no such step in smoke');
    expect(() => readFileSync(path.join(work, 'smoke', 'latest', 'result.json'))).toThrow();
    // Comma-separated lists are read as space-separated ones.
    const listed = await cli(['--work-root', work, 'smoke', '--only', 'readiness,iam-tokens,readines']);
    expect([listed.exitCode, listed.stderr]).toEqual([2, expect.stringContaining('--only readines: no such step in smoke')]);
  });
});
