#!/usr/bin/env node
// VM hosting on the running lab cluster (`ultracloud start` first), through the same clients the
// smoke lane uses: inner guest create-to-ready alone on an otherwise idle worker, then one per
// worker at once; delete-to-clean (unit, tap, lease gone); worker memory with two inner guests;
// live migration of an idle 96 MiB guest (disk on a coronafs volume) to the other worker.
// Usage: node scripts/bench-vm.js [--runs N] [--migration-only]
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '2' }, 'migration-only': { type: 'boolean', default: false } },
});
const runs = Number(values.runs);
const dist = (m) => import(new URL(`../dist/${m}`, import.meta.url).href);
const [
  { loadProfile },
  { clusterPaths, resolveWorkRoot },
  { Cluster },
  { log, configureConsoleLog },
  { bindServices },
  { laneTenants, sweepTenant },
] = await Promise.all(
  ['config/load-profile.js', 'config/paths.js', 'cluster/cluster.js', 'core/log.js', 'services/index.js', 'lanes/steps/tenants.js'].map(
    dist,
  ),
);
configureConsoleLog('warn');
const profile = loadProfile(process.env.ULTRACLOUD_PROFILE ?? 'lab');
const cluster = await Cluster.open(profile, clusterPaths(resolveWorkRoot(), profile.name), log.child({ lane: 'bench-vm' }));
const { iam, plasmavmc, prismnet, coronafs } = bindServices(cluster, ['iam', 'plasmavmc', 'prismnet', 'coronafs']);
const { a } = await laneTenants(iam, 'bench');
const workers = bindServices(cluster, ['plasmavmc-agent'])['plasmavmc-agent'].nodes();
const marker = plasmavmc.params.readyMarker;
const s = (ms) => Number((ms / 1000).toFixed(1));

/** Create VMs on the given workers (one each) and time each to its ready marker. */
async function boot(net, on) {
  const image = await plasmavmc.importImage(a, 'bench', plasmavmc.params.image);
  return Promise.all(
    on.map(async (w) => {
      const t0 = Date.now();
      const port = await prismnet.createPort(a, net.id, `b-${w.name}`);
      const vm = await plasmavmc.createVm(a, { name: `bench-${w.name}`, image: image.id, worker: w.name, ports: [port.id] });
      await plasmavmc.waitForConsole(a, vm, new RegExp(`${marker} vm=${vm.id}`), marker, { timeoutMs: 600_000 });
      return { vm, port, worker: w, readyS: s(Date.now() - t0), accel: (await plasmavmc.vm(a, vm.id)).status.accel };
    }),
  );
}

async function deleteAll(booted) {
  return Promise.all(
    booted.map(async ({ vm, port, worker }) => {
      const t0 = Date.now();
      await plasmavmc.deleteVm(a, vm.id);
      for (;;) {
        const units = await plasmavmc.vmUnits(worker);
        const taps = await prismnet.tapsOn(worker);
        if (!units.includes(vm.id) && !taps.includes(vm.nics[0].tap)) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      await prismnet.deletePort(a, port.id);
      return s(Date.now() - t0);
    }),
  );
}

const memUsedMiB = async (w) => Number((await w.succeed(['sh', '-c', "free -m | awk '/^Mem:/{print $3}'"])).trim());

const out = { alone: [], pair: [], deleteToCleanS: [], workerMemMiB: {} };
try {
  await sweepTenant(a, plasmavmc, prismnet, coronafs);
  const net = await prismnet.createNetwork(a, 'bench', '10.250.0.0/24');
  for (let i = 0; i < (values['migration-only'] ? 0 : runs); i++) {
    const [one] = await boot(net, [workers[0]]);
    out.alone.push(one.readyS);
    out.deleteToCleanS.push(...(await deleteAll([one])));
    const before = Object.fromEntries(await Promise.all(workers.map(async (w) => [w.name, await memUsedMiB(w)])));
    const two = await boot(net, workers);
    out.pair.push(...two.map((x) => x.readyS));
    out.accel = two.map((x) => `${x.worker.name}:${x.accel}`).join(' ');
    // Two guests on one worker: the second pair member moves next to the first for the memory figure.
    const extra = await boot(net, [workers[0]]);
    out.workerMemMiB[`run${i}`] = { before: before[workers[0].name], withTwoGuests: await memUsedMiB(workers[0]) };
    out.deleteToCleanS.push(...(await deleteAll([...two, ...extra])));
  }
  // Live migration of an idle 96 MiB guest whose disk is a controller-exported coronafs volume.
  out.migration = [];
  for (let i = 0; i < runs; i++) {
    const image = await plasmavmc.importImage(a, 'bench-mig', plasmavmc.params.image);
    const port = await prismnet.createPort(a, net.id, 'mig');
    const volume = await coronafs.createVolume(a, { name: 'mig', sizeMiB: 16, kind: 'controller' });
    const vm = await plasmavmc.createVm(a, {
      name: 'bench-mig',
      image: image.id,
      worker: workers[0].name,
      ports: [port.id],
      volumes: [volume.id],
      memoryMiB: 96,
    });
    await plasmavmc.waitForConsole(a, vm, new RegExp(`ULTRACLOUD_INNER_NET vm=${vm.id}`), 'a DHCP address', { timeoutMs: 600_000 });
    const t0 = Date.now();
    const moved = await plasmavmc.migrate(a, vm.id, workers[1].name);
    const wallS = s(Date.now() - t0);
    // Still the same guest, now served from the other worker over VXLAN.
    const via = cluster.node(net.dhcpWorker);
    const r = await fetch(`${await via.url(80, port.ip)}/`, { signal: AbortSignal.timeout(15_000) });
    out.migration.push({ wallS, ...moved.migrated, answersAfter: `${r.status} ${(await r.text()).trim()}`, nowOn: moved.worker });
    await plasmavmc.deleteVm(a, vm.id);
    await prismnet.deletePort(a, port.id);
    await coronafs.deleteVolume(a, volume.id);
  }
  await prismnet.deleteNetwork(a, net.id);
} finally {
  await sweepTenant(a, plasmavmc, prismnet, coronafs).catch(() => {});
  cluster.close();
}
console.log(JSON.stringify(out, null, 2));
process.exit(0);
