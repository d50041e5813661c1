import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { RunResult } from '../../src/core/result.js';
import { RunRecord } from '../../src/core/run-record.js';
import { hostFacts } from '../../src/host/facts.js';
import { REPO } from '../helpers/cli.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'uc-run-'));
const readResult = (dir: string) => RunResult.parse(JSON.parse(readFileSync(path.join(dir, 'result.json'), 'utf8')));
const open: RunRecord[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.finish();
});

async function record(workRoot: string, lane = 'smoke') {
  const r = await RunRecord.create({ workRoot, lane, profile: 'lab', host: hostFacts() });
  open.push(r);
  return r;
}

describe('run record', () => {
  it('says running at start and is rewritten after each step', async () => {
    const root = tmp();
    const rec = await record(root);
    expect(readResult(rec.dir).status).toBe('running');
    await rec.step('first', async (ctx) => {
      expect(readResult(rec.dir).steps[0]!.status).toBe('running');
      await ctx.evidence('first/out.txt', 'hello');
      return 'did it';
    });
    const mid = readResult(rec.dir);
    expect(mid.steps[0]).toMatchObject({ name: 'first', status: 'passed', detail: 'did it', evidence: ['first/out.txt'] });
    expect(readFileSync(path.join(rec.dir, 'first/out.txt'), 'utf8')).toBe('hello');
    await expect(
      rec.step('second', async (ctx) => {
        ctx.phase('halfway');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    rec.skip('third', 'an earlier step failed', 'failure');
    const res = await rec.finish();
    expect(res.success).toBe(false);
    expect(res.status).toBe('failed');
    const disk = readResult(rec.dir);
    expect(disk.steps.map((s) => s.status)).toEqual(['passed', 'failed', 'skipped']);
    expect(disk.steps[1]!.error).toBe('boom');
    // Where a failed step got to is on record.
    expect(disk.steps[1]!.phases).toEqual([{ name: 'halfway', atMs: expect.any(Number) }]);
    expect(disk.finishedAt).not.toBeNull();
    const junit = readFileSync(path.join(rec.dir, 'junit.xml'), 'utf8');
    expect(junit).toMatch(/tests="3" failures="1" .*skipped="1"/);
    expect(junit).toMatch(/<testcase classname="ultracloud.smoke" name="second" time="[\d.]+">\s*<failure message="boom">/);
    expect(existsSync(path.join(rec.dir, 'run.log'))).toBe(true);
  });

  it('success needs every step passed, and at least one step', async () => {
    const root = tmp();
    const empty = await record(root, 'empty');
    expect((await empty.finish()).success).toBe(false);
    const ok = await record(root, 'ok');
    await ok.step('only', async () => undefined);
    expect((await ok.finish()).success).toBe(true);
  });

  it('refuses (exit 2) a `latest` that is a real directory, creating no run dir', async () => {
    const root = tmp();
    mkdirSync(path.join(root, 'smoke', 'latest'), { recursive: true });
    await expect(RunRecord.create({ workRoot: root, lane: 'smoke', profile: 'lab', host: hostFacts() })).rejects.toThrow(
      /smoke\/latest is not the harness's link to the newest run \(it is a real directory\); move it away first/,
    );
    expect(readdirSync(path.join(root, 'smoke'))).toEqual(['latest']);
  });

  it('counts steps left out on request as fine, and steps skipped after a failure as not', async () => {
    const root = tmp();
    const a = await record(root);
    await a.step('ran', async () => 'ok');
    a.skip('left-out', 'skipped by request (--only ran)', 'request');
    expect((await a.finish()).success).toBe(true);
    const b = await record(root);
    await b.step('ran', async () => 'ok');
    b.skip('not-reached', 'skipped: step x failed', 'failure');
    expect((await b.finish()).success).toBe(false);
  });

  it('moves latest atomically to the newest run', async () => {
    const root = tmp();
    const a = await record(root);
    await a.finish();
    const b = await record(root);
    await b.finish();
    expect(a.dir).not.toBe(b.dir);
    expect(readlinkSync(path.join(root, 'smoke', 'latest'))).toBe(path.basename(b.dir));
    expect(readResult(path.join(root, 'smoke', 'latest')).startedAt).toBe(readResult(b.dir).startedAt);
  });

  it('a SIGTERMed run leaves result.json saying interrupted, with the running step marked', async () => {
    const root = tmp();
    const script = `
      const { RunRecord } = await import(${JSON.stringify(path.join(REPO, 'dist/core/run-record.js'))});
      const { hostFacts } = await import(${JSON.stringify(path.join(REPO, 'dist/host/facts.js'))});
      const rec = await RunRecord.create({ workRoot: ${JSON.stringify(root)}, lane: 'smoke', profile: 'lab', host: hostFacts() });
      await rec.step('fast', async () => {});
      rec.step('forever', () => new Promise(() => { console.log('READY'); setInterval(() => {}, 1000); }));`;
    const child = execa('node', ['--input-type=module', '-e', script], { reject: false });
    await new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('READY') && resolve()));
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode).toBe(143);
    const res = readResult(path.join(root, 'smoke', 'latest'));
    expect(res.status).toBe('interrupted');
    expect(res.success).toBe(false);
    expect(res.error).toMatch(/SIGTERM/);
    expect(res.steps.map((s) => [s.name, s.status])).toEqual([
      ['fast', 'passed'],
      ['forever', 'running'],
    ]);
    expect(readFileSync(path.join(root, 'smoke', 'latest', 'junit.xml'), 'utf8')).toMatch(/interrupted while running/);
  });

  it('a process whose cleanup already ran but that a stray handle keeps alive still exits on SIGTERM', async () => {
    const script = `
      const { onCleanup, runCleanups } = await import(${JSON.stringify(path.join(REPO, 'dist/core/shutdown.js'))});
      onCleanup('noop', () => {});
      await runCleanups('exit');
      setInterval(() => {}, 1000); // the leak
      console.log('READY');`;
    const child = execa('node', ['--input-type=module', '-e', script], { reject: false, timeout: 20_000 });
    await new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('READY') && resolve()));
    child.kill('SIGTERM');
    expect((await child).exitCode).toBe(143);
  });
});
