import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DATED_DIR } from '../core/time.js';
import { removeWithin } from '../core/work-root.js';
import { diskUsage, formatBytes } from './disk-usage.js';

/** The seeds' work-root-budget.sh: report sizes, enforce soft budgets, prune dated proof dirs safely. */

const GiB = 2 ** 30;
/** Top-level work-root entries that are runtime state, not lanes. */
const NOT_LANES = new Set(['test-cluster', 'images', 'keys', 'tmp', 'cache']);

export interface LaneUsage {
  lane: string;
  bytes: number;
  latest: string | null;
  runs: { name: string; bytes: number }[];
}

export interface BudgetStatus {
  workRoot: string;
  exists: boolean;
  totalBytes: number;
  clusterStateBytes: number;
  imageCacheBytes: number;
  lanes: LaneUsage[];
}

export interface Budgets {
  workRootGiB: number;
  clusterStateGiB: number;
  imageCacheGiB: number;
  /** Per lane: all of its dated proof dirs together. */
  laneGiB: number;
}

export const DEFAULT_BUDGETS: Budgets = { workRootGiB: 120, clusterStateGiB: 60, imageCacheGiB: 20, laneGiB: 5 };

/** Budgets from ULTRACLOUD_BUDGET_*_GIB, then defaults. */
export function budgetsFromEnv(env: NodeJS.ProcessEnv = process.env): Budgets {
  const num = (k: string, d: number) => {
    const v = env[k];
    if (v === undefined || v === '') return d;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new RangeError(`${k}=${v}: expected a positive number of GiB`);
    return n;
  };
  return {
    workRootGiB: num('ULTRACLOUD_BUDGET_WORK_ROOT_GIB', DEFAULT_BUDGETS.workRootGiB),
    clusterStateGiB: num('ULTRACLOUD_BUDGET_CLUSTER_STATE_GIB', DEFAULT_BUDGETS.clusterStateGiB),
    imageCacheGiB: num('ULTRACLOUD_BUDGET_IMAGE_CACHE_GIB', DEFAULT_BUDGETS.imageCacheGiB),
    laneGiB: num('ULTRACLOUD_BUDGET_LANE_GIB', DEFAULT_BUDGETS.laneGiB),
  };
}

async function isRealDir(p: string): Promise<boolean> {
  const st = await fs.lstat(p).catch(() => null);
  return st?.isDirectory() === true && !st.isSymbolicLink();
}

async function latestTarget(laneDir: string): Promise<string | null> {
  const t = await fs.readlink(path.join(laneDir, 'latest')).catch(() => null);
  return t === null ? null : path.basename(t);
}

/** Dated run dirs of a lane, newest first (the names sort by time). Symlinks are never listed. */
async function datedRuns(laneDir: string): Promise<string[]> {
  const names = await fs.readdir(laneDir).catch(() => [] as string[]);
  const runs: string[] = [];
  for (const n of names) if (DATED_DIR.test(n) && (await isRealDir(path.join(laneDir, n)))) runs.push(n);
  return runs.sort().reverse();
}

export async function budgetStatus(workRoot: string): Promise<BudgetStatus> {
  const exists = await isRealDir(workRoot);
  const entries = exists ? await fs.readdir(workRoot) : [];
  const lanes: LaneUsage[] = [];
  for (const lane of entries.sort()) {
    const dir = path.join(workRoot, lane);
    if (NOT_LANES.has(lane) || !(await isRealDir(dir))) continue;
    const runNames = await datedRuns(dir);
    if (runNames.length === 0) continue;
    const runs = await Promise.all(runNames.map(async (name) => ({ name, bytes: await diskUsage(path.join(dir, name)) })));
    // The lane total reuses the run sizes instead of walking the dated dirs a second time.
    const others = (await fs.readdir(dir)).filter((n) => !runNames.includes(n));
    const otherBytes = await Promise.all(others.map((n) => diskUsage(path.join(dir, n))));
    const own = (await fs.lstat(dir)).blocks * 512;
    lanes.push({
      lane,
      bytes: own + runs.reduce((a, r) => a + r.bytes, 0) + otherBytes.reduce((a, b) => a + b, 0),
      latest: await latestTarget(dir),
      runs,
    });
  }
  return {
    workRoot,
    exists,
    totalBytes: exists ? await diskUsage(workRoot) : 0,
    clusterStateBytes: exists ? await diskUsage(path.join(workRoot, 'test-cluster')) : 0,
    imageCacheBytes: exists ? await diskUsage(path.join(workRoot, 'images')) : 0,
    lanes,
  };
}

export interface BudgetViolation {
  what: string;
  bytes: number;
  budgetBytes: number;
}

export function budgetViolations(s: BudgetStatus, b: Budgets): BudgetViolation[] {
  const v: BudgetViolation[] = [];
  const check = (what: string, bytes: number, gib: number) => {
    if (bytes > gib * GiB) v.push({ what, bytes, budgetBytes: gib * GiB });
  };
  check('work root', s.totalBytes, b.workRootGiB);
  check('cluster state (test-cluster/)', s.clusterStateBytes, b.clusterStateGiB);
  check('image cache (images/)', s.imageCacheBytes, b.imageCacheGiB);
  for (const l of s.lanes) check(`lane ${l.lane}`, l.bytes, b.laneGiB);
  return v;
}

export interface PruneCandidate {
  lane: string;
  run: string;
  path: string;
  bytes: number;
}

/**
 * Keep the `keep` newest dated runs per lane and the one `latest` points at; everything else
 * is a candidate. Candidates are real directories whose real path is inside the work root.
 */
export async function prunePlan(workRoot: string, keep: number): Promise<PruneCandidate[]> {
  if (!Number.isInteger(keep) || keep < 0) throw new RangeError(`KEEP must be a whole number >= 0, got ${keep}`);
  const root = await fs.realpath(workRoot);
  const status = await budgetStatus(workRoot);
  const out: PruneCandidate[] = [];
  for (const l of status.lanes) {
    for (const [i, r] of l.runs.entries()) {
      if (i < keep || r.name === l.latest) continue;
      const p = path.join(workRoot, l.lane, r.name);
      if (!(await insideRoot(root, p))) continue;
      out.push({ lane: l.lane, run: r.name, path: p, bytes: r.bytes });
    }
  }
  return out;
}

async function insideRoot(realRoot: string, p: string): Promise<boolean> {
  const real = await fs.realpath(p).catch(() => null);
  return real?.startsWith(realRoot + path.sep) === true && (await isRealDir(p));
}

/** Delete planned candidates, re-checking each (nothing may have become a symlink since planning). */
export async function applyPrune(workRoot: string, plan: PruneCandidate[]): Promise<PruneCandidate[]> {
  const root = await fs.realpath(workRoot);
  const done: PruneCandidate[] = [];
  for (const c of plan) {
    if (!(await insideRoot(root, c.path))) continue;
    await removeWithin(workRoot, c.path); // the work root's marker, real paths, no mounts
    done.push(c);
  }
  return done;
}

export function renderStatus(s: BudgetStatus, b: Budgets): string {
  if (!s.exists) return `work root ${s.workRoot} does not exist yet (nothing to report)`;
  const lines = [
    `work root      ${formatBytes(s.totalBytes).padStart(10)}  budget ${b.workRootGiB} GiB  ${s.workRoot}`,
    `cluster state  ${formatBytes(s.clusterStateBytes).padStart(10)}  budget ${b.clusterStateGiB} GiB  test-cluster/`,
    `image cache    ${formatBytes(s.imageCacheBytes).padStart(10)}  budget ${b.imageCacheGiB} GiB  images/`,
  ];
  for (const l of s.lanes)
    lines.push(
      `lane ${l.lane.padEnd(9)} ${formatBytes(l.bytes).padStart(10)}  budget ${b.laneGiB} GiB  ${l.runs.length} dated run(s), latest -> ${l.latest ?? '(none)'}`,
    );
  lines.push(
    'safe cleanup sequence:',
    '  1. ultracloud stop                              # stop guests and the switch',
    '  2. ultracloud clean                             # remove transient VM state (test-cluster/)',
    '  3. ultracloud work-root-budget prune-proof-logs 2 --apply   # trim old dated proofs',
    '  4. nix-collect-garbage (nix profiles only)       # after old result links are gone',
  );
  return lines.join('\n');
}
