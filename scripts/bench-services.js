#!/usr/bin/env node
// The storage and edge services on the running lab cluster (`ultracloud start` first): for each,
// on the nodes that run it, the unit's start-to-ready under TCG (systemctl restart returns once the
// unit is active, which for these units means listening or, for PowerDNS, notified ready; then
// its health must answer) and its memory (the unit's cgroup, children included).
// Usage: node scripts/bench-services.js [--runs N]
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '2' } } });
const runs = Number(values.runs);
const dist = (m) => import(new URL(`../dist/${m}`, import.meta.url).href);
const [{ loadProfile }, { clusterPaths, resolveWorkRoot }, { Cluster }, { log, configureConsoleLog }, { bindServices }, { waitFor }] =
  await Promise.all(
    ['config/load-profile.js', 'config/paths.js', 'cluster/cluster.js', 'core/log.js', 'services/index.js', 'core/retry.js'].map(dist),
  );
configureConsoleLog('warn');
const profile = loadProfile(process.env.ULTRACLOUD_PROFILE ?? 'lab');
const cluster = await Cluster.open(profile, clusterPaths(resolveWorkRoot(), profile.name), log.child({ lane: 'bench-services' }));
const swift = ['lightningstor', 'lightningstor-object', 'lightningstor-container', 'lightningstor-account'];
const services = bindServices(cluster, ['flashdns', 'fiberlb', 'k8shost', 'creditservice', ...swift]);
const { flashdns, fiberlb, k8shost, creditservice, lightningstor } = services;
const s = (ms) => Number((ms / 1000).toFixed(1));

/** What answering means for each: the same checks service-health makes. */
const targets = [
  ...flashdns.nodes().map((n) => ({
    name: 'flashdns',
    unit: flashdns.unit,
    node: n,
    ready: () =>
      flashdns.query(n, '127.0.0.1', 'version.bind', 'TXT', 'CH').then((a) => {
        if (a.status !== 'NOERROR') throw new Error(a.status);
      }),
  })),
  ...fiberlb.nodes().map((n) => ({ name: 'fiberlb', unit: fiberlb.unit, node: n, ready: () => fiberlb.health(n) })),
  ...k8shost
    .nodes()
    .slice(0, 1)
    .map((n) => ({ name: 'k8shost (control-apis)', unit: k8shost.unit, node: n, ready: () => k8shost.health(n) })),
  ...creditservice.nodes().map((n) => ({
    name: 'creditservice',
    unit: creditservice.unit,
    node: n,
    ready: () => n.succeed(['curl', '-sf', 'http://127.0.0.1:8090/health']),
  })),
  // Swift (lightningstor): its units are active once the server listens; the proxy must also pass its healthcheck.
  ...swift.map((name) => {
    const svc = services[name];
    const n = svc.nodes()[0];
    return { name, unit: svc.unit, node: n, ready: () => (name === 'lightningstor' ? lightningstor.health() : svc.ready()) };
  }),
];
const out = [];
try {
  for (const t of targets) {
    const row = { service: t.name, unit: t.unit, node: t.node.name, startToReadyS: [], memoryMiB: null };
    for (let i = 0; i < runs; i++) {
      const t0 = Date.now();
      await t.node.succeed(['systemctl', 'restart', t.unit], { timeoutMs: 300_000 });
      await waitFor(`${t.unit} on ${t.node} answers`, { timeoutMs: 120_000, intervalMs: 200 }, t.ready);
      row.startToReadyS.push(s(Date.now() - t0));
    }
    // Settled memory: a few seconds after the last start.
    await new Promise((r) => setTimeout(r, 5000));
    row.memoryMiB = Math.round(Number((await t.node.succeed(['systemctl', 'show', '-P', 'MemoryCurrent', t.unit])).trim()) / 1048576);
    out.push(row);
  }
} finally {
  cluster.close();
}
console.log(JSON.stringify(out, null, 2));
process.exit(0);
