#!/usr/bin/env node
// Median time of a trivial command (`true`) over the pooled ssh2 connection vs spawning the
// system `ssh` client per command, on the same lab guest. Boots node01 if it is not running
// (and stops it again). Usage: node scripts/bench-ssh.js [--runs N] [--node node01]
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '30' }, node: { type: 'string', default: 'node01' } } });
const runs = Number(values.runs);
const node = values.node;

const dist = (m) => import(new URL(`../dist/${m}`, import.meta.url).href);
const [
  { loadProfile },
  { clusterPaths, resolveWorkRoot },
  { Cluster },
  { startCluster, stopCluster },
  { log, configureConsoleLog },
  { runCleanups },
] = await Promise.all(
  ['config/load-profile.js', 'config/paths.js', 'cluster/cluster.js', 'cluster/lifecycle.js', 'core/log.js', 'core/shutdown.js'].map(dist),
);
configureConsoleLog('info');
const profile = loadProfile(process.env.ULTRACLOUD_PROFILE ?? 'lab');
const cluster = await Cluster.open(profile, clusterPaths(resolveWorkRoot(), profile.name), log.child({ lane: 'bench-ssh' }));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

let bootedHere = false;
try {
  const n = cluster.node(node);
  if (!(await n.running())) {
    await startCluster(cluster, { nodes: [node], accel: 'auto', waveTimeoutMs: 600_000 });
    bootedHere = true;
  }
  const t = await n.target();
  await n.exec('true'); // connect (and pin the host key) outside the measurement

  const pooled = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await n.exec('true');
    pooled.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }

  const f = n.files;
  writeFileSync(f.knownHosts, `[127.0.0.1]:${t.port} ${readFileSync(f.hostKey, 'utf8').trim()}\n`);
  const sshArgs = [
    '-i',
    cluster.key.privateKey,
    '-p',
    String(t.port),
    '-o',
    `UserKnownHostsFile=${f.knownHosts}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'BatchMode=yes',
    'root@127.0.0.1',
    'true',
  ];
  const spawned = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync('ssh', sshArgs, { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`ssh exited ${r.status}`);
    spawned.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const result = { node, runs, pooledMedianMs: +median(pooled).toFixed(1), spawnedMedianMs: +median(spawned).toFixed(1) };
  result.speedup = +(result.spawnedMedianMs / result.pooledMedianMs).toFixed(1);
  console.log(JSON.stringify(result));
  console.log(`median of ${runs}: pooled ssh2 ${result.pooledMedianMs} ms, spawned ssh ${result.spawnedMedianMs} ms (${result.speedup}x)`);
} finally {
  cluster.close();
  if (bootedHere) await stopCluster(cluster, { nodes: [node] });
  await runCleanups('exit');
}
