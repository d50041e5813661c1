#!/usr/bin/env node
// Median round trip of a trivial command (`true`) on one lab guest, three ways in one run: the
// node's shell channel (what probes use), an sshd session per command on the pooled ssh2
// connection, and spawning the system `ssh` client per command. Boots node01 if it is not
// running (and stops it again). Usage: node scripts/bench-ssh.js [--runs N] [--node node01]
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '30' }, node: { type: 'string', default: 'node01' } } });
const runs = Number(values.runs);
const node = values.node;

const dist = (m) => import(new URL(`../dist/${m}`, import.meta.url).href);
const [
  { loadProfile },
  { clusterPaths, resolveWorkRoot },
  { Cluster },
  { buildClusterImages, stopCluster },
  { waitForSsh },
  { ensureSwitch },
  { log, configureConsoleLog },
  { runCleanups },
] = await Promise.all(
  [
    'config/load-profile.js',
    'config/paths.js',
    'cluster/cluster.js',
    'cluster/lifecycle.js',
    'cluster/readiness.js',
    'vm/switch.js',
    'core/log.js',
    'core/shutdown.js',
  ].map(dist),
);
configureConsoleLog('info');
const profile = loadProfile(process.env.ULTRACLOUD_PROFILE ?? 'lab');
const cluster = await Cluster.open(profile, clusterPaths(resolveWorkRoot(), profile.name), log.child({ lane: 'bench-ssh' }));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

let bootedHere = false;
try {
  const n = cluster.node(node);
  if (!(await n.running())) {
    // One node alone: its services may never be ready (etcd wants a quorum), but SSH is all this measures.
    const images = await buildClusterImages(cluster, log);
    await ensureSwitch(cluster.paths.vde);
    bootedHere = true;
    await n.launch({ images, accel: 'tcg' });
    await waitForSsh(n, Date.now() + 600_000);
  }
  await n.exec('true'); // connect (and pin the host key) outside the measurement

  const time = async (fn) => {
    const out = [];
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      await fn();
      out.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return out;
  };
  const channel = await time(() => n.exec('true'));
  const session = await time(() => n.exec('true', { via: 'session' }));

  const sshArgs = [...(await n.sshArgv(['BatchMode=yes'])), 'true'];
  const spawned = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync('ssh', sshArgs, { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`ssh exited ${r.status}`);
    spawned.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const ms = (xs) => +median(xs).toFixed(1);
  const result = { node, runs, channelMedianMs: ms(channel), sessionMedianMs: ms(session), spawnedMedianMs: ms(spawned) };
  result.channelVsSpawned = +(result.spawnedMedianMs / result.channelMedianMs).toFixed(1);
  console.log(JSON.stringify(result));
  console.log(
    `median of ${runs}: shell channel ${result.channelMedianMs} ms, sshd session ${result.sessionMedianMs} ms, spawned ssh ${result.spawnedMedianMs} ms (channel ${result.channelVsSpawned}x faster than spawning ssh)`,
  );
} finally {
  cluster.close();
  if (bootedHere) await stopCluster(cluster, { nodes: [node] });
  await runCleanups('exit');
}
