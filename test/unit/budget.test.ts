import { existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyPrune, budgetStatus, budgetsFromEnv, budgetViolations, prunePlan } from '../../src/budget/work-root-budget.js';
import { cli } from '../helpers/cli.js';

/** A work root with dated runs: smoke has 4 (latest -> the 2nd newest), matrix 1. */
function fixture() {
  const root = mkdtempSync(path.join(os.tmpdir(), 'uc-budget-'));
  writeFileSync(path.join(root, '.ultracloud-work-root'), ''); // made by the harness
  const runs = { smoke: ['20261101T000000Z', '20261102T000000Z', '20261103T000000Z', '20261104T000000Z'], matrix: ['20261105T000000Z'] };
  for (const [lane, names] of Object.entries(runs))
    for (const n of names) {
      mkdirSync(path.join(root, lane, n), { recursive: true });
      writeFileSync(path.join(root, lane, n, 'result.json'), 'x'.repeat(10000));
    }
  symlinkSync('20261103T000000Z', path.join(root, 'smoke', 'latest'));
  // A dated entry that is a symlink to a directory outside the work root: must never be touched.
  const outside = mkdtempSync(path.join(os.tmpdir(), 'uc-outside-'));
  writeFileSync(path.join(outside, 'precious'), 'keep me');
  symlinkSync(outside, path.join(root, 'smoke', '20261001T000000Z'));
  // A lane dir that is itself a symlink out of the root.
  symlinkSync(outside, path.join(root, 'elsewhere'));
  mkdirSync(path.join(root, 'test-cluster', 'state'), { recursive: true });
  writeFileSync(path.join(root, 'test-cluster', 'state', 'disk.qcow2'), 'y'.repeat(50000));
  return { root, outside };
}

describe('work-root-budget', () => {
  it('reports sizes of state and each lane without following symlinks', async () => {
    const { root } = fixture();
    const s = await budgetStatus(root);
    expect(s.lanes.map((l) => l.lane)).toEqual(['matrix', 'smoke']);
    const smoke = s.lanes.find((l) => l.lane === 'smoke')!;
    expect(smoke.runs.map((r) => r.name)).toEqual(['20261104T000000Z', '20261103T000000Z', '20261102T000000Z', '20261101T000000Z']);
    expect(smoke.latest).toBe('20261103T000000Z');
    expect(s.clusterStateBytes).toBeGreaterThanOrEqual(50000);
    expect(s.totalBytes).toBeGreaterThan(s.clusterStateBytes);
  });

  it('flags exactly the budgets that are exceeded', async () => {
    const { root } = fixture();
    const s = await budgetStatus(root);
    const tiny = 40000 / 2 ** 30; // 40 kB: the 50 kB state file is over it
    const v = budgetViolations(s, { workRootGiB: 1, clusterStateGiB: tiny, imageCacheGiB: 1, laneGiB: 1 });
    expect(v.map((x) => x.what)).toEqual(['cluster state (test-cluster/)']);
    const smokeBytes = s.lanes.find((l) => l.lane === 'smoke')!.bytes;
    const lanes = budgetViolations(s, { workRootGiB: 1, clusterStateGiB: 1, imageCacheGiB: 1, laneGiB: (smokeBytes - 1) / 2 ** 30 });
    expect(lanes.map((x) => x.what)).toEqual(['lane smoke']);
    expect(budgetViolations(s, { workRootGiB: 1, clusterStateGiB: 1, imageCacheGiB: 1, laneGiB: 1 })).toEqual([]);
    expect(() => budgetsFromEnv({ ULTRACLOUD_BUDGET_LANE_GIB: '-1' })).toThrow(/positive/);
    expect(budgetsFromEnv({ ULTRACLOUD_BUDGET_LANE_GIB: '2.5' }).laneGiB).toBe(2.5);
  });

  it('keeps the N newest per lane plus latest, and deletes only real dirs inside the root', async () => {
    const { root, outside } = fixture();
    const plan = await prunePlan(root, 1);
    expect(plan.map((c) => `${c.lane}/${c.run}`)).toEqual(['smoke/20261102T000000Z', 'smoke/20261101T000000Z']);
    const done = await applyPrune(root, plan);
    expect(done).toHaveLength(2);
    for (const keep of ['20261104T000000Z', '20261103T000000Z', '20261001T000000Z'])
      expect(existsSync(path.join(root, 'smoke', keep))).toBe(true);
    expect(existsSync(path.join(root, 'smoke', '20261102T000000Z'))).toBe(false);
    expect(existsSync(path.join(outside, 'precious'))).toBe(true);
    // KEEP 0 still keeps what latest points at; a lane without a latest link keeps nothing.
    expect((await prunePlan(root, 0)).map((c) => `${c.lane}/${c.run}`)).toEqual(['matrix/20261105T000000Z', 'smoke/20261104T000000Z']);
  });

  it('CLI: prune-proof-logs is a dry run unless --apply', async () => {
    const { root, outside } = fixture();
    const dry = await cli(['--work-root', root, 'work-root-budget', 'prune-proof-logs', '1']);
    expect(dry.exitCode).toBe(0);
    expect(dry.stdout).toMatch(/would delete smoke\/20261102T000000Z/);
    expect(dry.stdout).toMatch(/would delete smoke\/20261101T000000Z/);
    expect(dry.stdout).not.toMatch(/20261103|20261104|matrix|20261001/);
    expect(existsSync(path.join(root, 'smoke', '20261101T000000Z'))).toBe(true);
    const applied = await cli(['--work-root', root, '--json', 'work-root-budget', 'prune-proof-logs', '1', '--apply']);
    expect(JSON.parse(applied.stdout).deleted.map((d: { run: string }) => d.run)).toEqual(['20261102T000000Z', '20261101T000000Z']);
    expect(existsSync(path.join(root, 'smoke', '20261101T000000Z'))).toBe(false);
    expect(existsSync(path.join(outside, 'precious'))).toBe(true);
    const bad = await cli(['--work-root', root, 'work-root-budget', 'prune-proof-logs', 'two']);
    expect(bad.exitCode).toBe(2);
    const enforce = await cli(['--work-root', root, 'work-root-budget', 'enforce'], {
      env: { ULTRACLOUD_BUDGET_CLUSTER_STATE_GIB: '0.00001' },
    });
    expect(enforce.exitCode).toBe(1);
    expect(enforce.stdout).toMatch(/over budget: cluster state/);
  });
});
