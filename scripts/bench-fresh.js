#!/usr/bin/env node
// fresh-smoke booted for real vs restored from a snapshot, measured in the same run on this host:
// wall time of each, the restore itself, and the snapshot's size on disk. The cold run saves the
// snapshot when none exists. Usage: node scripts/bench-fresh.js [--profile lab]
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { profile: { type: 'string', default: 'lab' } } });
const bin = new URL('../bin/ultracloud.js', import.meta.url).pathname;

/** One fresh-smoke, timed from outside; its own result.json for the parts. */
function fresh(args) {
  const t0 = Date.now();
  let stdout;
  try {
    stdout = execFileSync('node', [bin, '--profile', values.profile, '--json', 'fresh-smoke', ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 64 << 20,
    });
  } catch (err) {
    stdout = err.stdout;
  }
  const wallMs = Date.now() - t0;
  const { dir } = JSON.parse(stdout);
  const result = JSON.parse(readFileSync(path.join(dir, 'result.json'), 'utf8'));
  const step = (n) => result.steps.find((s) => s.name === n)?.durationMs ?? 0;
  return {
    dir,
    passed: result.success,
    boot: result.boot,
    wallMs,
    bootMs: step('boot'),
    snapshotMs: step('snapshot'),
    laneMs: result.durationMs,
  };
}

const cold = fresh(['--cold-boot']);
const warm = fresh([]);
const snapDir = warm.boot?.snapshot && JSON.parse(readFileSync(path.join(warm.dir, 'boot.json'), 'utf8')).snapshotDir;
const snapshotBytes = snapDir ? Number(execFileSync('du', ['-sb', snapDir], { encoding: 'utf8' }).split('\t')[0]) : null;
const s = (ms) => +(ms / 1000).toFixed(1);
const out = {
  cold: { passed: cold.passed, wallS: s(cold.wallMs), bootS: s(cold.bootMs), snapshotSaveS: s(cold.snapshotMs) },
  snapshot: { passed: warm.passed, wallS: s(warm.wallMs), restoreS: s(warm.bootMs), from: warm.boot?.snapshot ?? null },
  speedup: +(cold.wallMs / warm.wallMs).toFixed(2),
  snapshotGiB: snapshotBytes === null ? null : +(snapshotBytes / 2 ** 30).toFixed(2),
};
console.log(JSON.stringify(out));
console.log(
  `fresh-smoke: cold ${out.cold.wallS} s (boot ${out.cold.bootS} s, save ${out.cold.snapshotSaveS} s), from snapshot ${out.snapshot.wallS} s (restore ${out.snapshot.restoreS} s): ${out.speedup}x; snapshot ${out.snapshotGiB} GiB`,
);
