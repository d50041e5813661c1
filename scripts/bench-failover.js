#!/usr/bin/env node
// fleet-scheduler's drain and failover on the running lab cluster (`ultracloud start` first): runs
// `smoke --only scheduler-drain-failover` N times and prints, per run and as medians, how long
// each transition took to settle (placements and running instances as expected), from the step's
// evidence: placed, drain, restore, failover (worker power cut to its instances running on the
// other worker), the worker's boot, and its return (replica restored).
// Usage: node scripts/bench-failover.js [--runs N]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '2' } } });
const bin = new URL('../bin/ultracloud.js', import.meta.url).pathname;
const runs = [];
for (let i = 0; i < Number(values.runs); i++) {
  const r = spawnSync('node', [bin, '--json', 'smoke', '--only', 'scheduler-drain-failover'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) {
    console.error(`run ${i + 1} failed (exit ${r.status}); see its run dir`);
    process.exit(1);
  }
  const { dir } = JSON.parse(r.stdout);
  const { ms } = JSON.parse(readFileSync(path.join(dir, 'scheduler-drain-failover.json'), 'utf8'));
  runs.push(ms);
  console.log(
    `run ${i + 1}: ${Object.entries(ms)
      .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`)
      .join(', ')}`,
  );
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(
  `median: ${Object.keys(runs[0])
    .map((k) => `${k} ${(median(runs.map((m) => m[k])) / 1000).toFixed(1)} s`)
    .join(', ')}`,
);
