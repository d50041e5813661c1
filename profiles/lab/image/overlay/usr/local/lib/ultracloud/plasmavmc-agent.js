// plasmavmc-agent (lab): registers this worker (accelerator that really works here, memory) under a
// chainfire lease, and runs the VMs placed on it as QEMU, each under its own systemd unit
// (plasmavmc-vm@<id>.service) with a QMP socket and a console log. Status goes back to chainfire.
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { serve, fail, sleep } = require('./http-json.js');
const { qmpSession } = require('./qmp.js');
const { chainfire, reconciler } = require('./chainfire.js');
const { run, units } = require('./host-cmd.js');
const { isHttpUrl, fetchVerified } = require('./object-image.js');

const NODE = process.env.NODE_NAME;
const IP = process.env.CLUSTER_IP;
const PORT = Number(process.env.PLASMAVMC_AGENT_PORT || 8101);
const K = '/ultracloud/plasmavmc';
const RUN = '/run/plasmavmc/vms';
const VAR = '/var/lib/plasmavmc';
const cf = chainfire();
const published = new Map();
const started = new Map(); // vm id -> generation its unit was started for

/**
 * Whether KVM really works inside this worker: /dev/kvm (even KVM_CREATE_VM) is not enough, as
 * nested KVM can stall on real work. The host harness's probe boot sector (shipped in the image)
 * must enter long mode, run its CPU loop and print its OK marker within the deadline.
 */
const PROBE = '/usr/local/lib/ultracloud/inner-guest/accel-probe.img';
function probeAccel() {
  if (!fs.existsSync('/dev/kvm')) return Promise.resolve({ accel: 'tcg', reason: '/dev/kvm is absent in this worker' });
  return new Promise((resolve) => {
    const q = spawn('qemu-system-x86_64', ['-accel', 'kvm', '-machine', 'pc', '-m', '16', '-nodefaults', '-display', 'none', '-no-reboot', '-serial', 'stdio', '-drive', `file=${PROBE},format=raw,if=ide,snapshot=on`]);
    let out = '';
    let err = '';
    const done = (r) => {
      clearTimeout(timer);
      q.kill('SIGKILL');
      resolve(r);
    };
    const timer = setTimeout(
      () => done({ accel: 'tcg', reason: out.includes('ULTRACLOUD_ACCEL_START') ? 'a KVM probe guest started but stalled within 20 s (nested KVM hangs here)' : 'a KVM probe guest printed nothing within 20 s' }),
      20000,
    );
    q.stdout.on('data', (d) => {
      out += d;
      if (out.includes('ULTRACLOUD_ACCEL_OK')) done({ accel: 'kvm', reason: 'a KVM probe guest ran its CPU loop to the end' });
    });
    q.stderr.on('data', (d) => (err += d));
    q.on('error', (e) => done({ accel: 'tcg', reason: `qemu did not start: ${e.message}` }));
    q.on('exit', (code) => done({ accel: 'tcg', reason: `-accel kvm failed (exit ${code}): ${err.trim().slice(0, 200)}` }));
  });
}

const unitOf = (id) => `plasmavmc-vm@${id}.service`;
const vmDir = (id) => path.join(VAR, 'vms', id);
const fromFileUrl = (u) => decodeURIComponent(new URL(u).pathname);

/**
 * The image's kernel and initrd, copied (file://) or fetched and verified against the digests
 * recorded at import (an object in lightningstor) once into this worker's image store.
 */
async function importImage(image) {
  const dir = path.join(VAR, 'images', image.id);
  const files = { vmlinuz: ['kernel', image.kernel], 'initrd.img': ['initrd', image.initrd] };
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, [what, url]] of Object.entries(files)) {
    const dst = path.join(dir, name);
    if (fs.existsSync(dst)) continue;
    if (isHttpUrl(url)) {
      await fetchVerified(url, dst, image.digests[what], `image ${image.id}: the ${what}`);
      continue;
    }
    const src = fromFileUrl(url);
    if (!fs.existsSync(src)) throw new Error(`image ${image.id}: ${url} does not exist on ${NODE}`);
    fs.copyFileSync(src, `${dst}.part`);
    fs.renameSync(`${dst}.part`, dst);
  }
  return { kernel: path.join(dir, 'vmlinuz'), initrd: path.join(dir, 'initrd.img') };
}

function qemuArgv(vm, accel, img, incomingPort) {
  const argv = [
    'qemu-system-x86_64', '-name', `plasmavmc-${vm.id}`, '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-machine', 'pc', '-accel', accel === 'kvm' ? 'kvm' : 'tcg,tb-size=32', '-smp', String(vm.vcpus), '-m', String(vm.memoryMiB),
    '-kernel', img.kernel, '-initrd', img.initrd, '-append', `console=ttyS0 panic=-1 plasmavmc.vm=${vm.id} ${vm.image.cmdline || ''}`.trim(),
    '-chardev', `file,id=console,path=${vmDir(vm.id)}/console.log,append=on`, '-serial', 'chardev:console',
    '-qmp', `unix:${RUN}/${vm.id}/qmp.sock,server=on,wait=off`,
  ];
  vm.nics.forEach((n, i) => {
    argv.push('-netdev', `tap,id=n${i},ifname=${n.tap},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=n${i},mac=${n.mac},romfile=`);
  });
  // coronafs volumes over NBD: the same export from any worker, which is what lets the VM migrate.
  for (const d of vm.disks || []) argv.push('-drive', `file=nbd://${d.host}:${d.port}/${d.exportName},format=raw,if=virtio,cache=none`);
  if (incomingPort) argv.push('-incoming', `tcp:0.0.0.0:${incomingPort}`);
  if (argv.some((a) => a.includes('\n'))) throw new Error(`vm ${vm.id}: an argument holds a newline`);
  return argv;
}

async function publish(id, status) {
  const text = JSON.stringify(status);
  if (published.get(id) === text) return;
  await cf.put(`${K}/status/${id}`, { ...status, worker: NODE, at: new Date().toISOString() });
  published.set(id, text);
}

/** Taps prismnet-agent has not made yet for the VM's ports (it makes them from the bindings). */
function missingTaps(vm) {
  const missing = vm.nics.filter((n) => !fs.existsSync(`/sys/class/net/${n.tap}`)).map((n) => n.tap);
  if (missing.length) setTimeout(trigger, 1000); // look again shortly
  return missing;
}

/** Volumes whose NBD export does not accept a connection from here yet (coronafs-agent starts it). */
async function unreachableDisks(vm) {
  const down = [];
  for (const d of vm.disks || []) {
    const ok = await new Promise((resolve) => {
      const sock = net.connect({ host: d.host, port: d.port, timeout: 2000 });
      const done = (up) => {
        sock.destroy();
        resolve(up);
      };
      sock.on('connect', () => done(true));
      sock.on('timeout', () => done(false));
      sock.on('error', () => done(false));
    });
    if (!ok) down.push(`${d.volume} at ${d.host}:${d.port}`);
  }
  if (down.length) setTimeout(trigger, 1000);
  return down;
}

/** Start the VM's unit: a fresh boot, or (incomingPort) a QEMU waiting for a live migration. */
async function startVm(vm, accel, incomingPort) {
  const img = await importImage(vm.image);
  fs.mkdirSync(path.join(RUN, vm.id), { recursive: true });
  fs.mkdirSync(vmDir(vm.id), { recursive: true });
  fs.writeFileSync(path.join(RUN, vm.id, 'argv'), `${qemuArgv(vm, accel, img, incomingPort).join('\n')}\n`);
  const what = incomingPort ? `incoming migration from ${vm.worker} on port ${incomingPort}` : 'start';
  fs.appendFileSync(path.join(vmDir(vm.id), 'console.log'), `\n=== plasmavmc: ${what} generation ${vm.generation} on ${NODE} at ${new Date().toISOString()} ===\n`);
  await run('systemctl', ['reset-failed', unitOf(vm.id)]).catch(() => {});
  await run('systemctl', ['restart', unitOf(vm.id)]);
  started.set(vm.id, vm.generation);
}

/**
 * Live migration, driven through chainfire: the target starts QEMU with -incoming and says
 * "listening"; the source migrates over QMP to the target's cluster address and reports the
 * outcome with QEMU's own figures. The API then moves the VM (and its ports) to the target.
 */
async function migrationStep(vm, accel) {
  const key = `${K}/migrations/${vm.id}`;
  const m = vm.migration;
  const state = (await cf.get(key))?.value;
  if (m.to === NODE && !state) {
    // No record: the migration has not begun, or it finished (the API clears the VM's migration,
    // then deletes the record). This pass's VM list may predate the move while the record read
    // came after it: read the VM again (after the record, so it sees the API's change) before an
    // incoming QEMU replaces the one just migrated here, which would then wait forever.
    const now = (await cf.get(`${K}/vms/${vm.id}`))?.value;
    if (now?.migration?.requestedAt !== m.requestedAt) return;
    if (missingTaps(vm).length) return;
    const down = await unreachableDisks(vm);
    if (down.length) throw new Error(`${NODE} cannot reach volume ${down.join(', ')}`);
    await startVm(vm, accel, m.port);
    // Say "listening" only once QEMU is (a probe connection would be taken as the migration stream).
    for (let i = 0; !(await run('ss', ['-Hltn', `sport = :${m.port}`])).trim(); i++) {
      if (i > 100) throw new Error(`QEMU on ${NODE} never listened on ${m.port} for the incoming migration`);
      await sleep(200);
    }
    await cf.put(key, { phase: 'listening', target: NODE, targetIp: IP, port: m.port, at: Date.now() });
  } else if (vm.worker === NODE && state?.phase === 'listening') {
    await cf.put(key, { ...state, phase: 'migrating' });
    const qmp = await qmpSession(path.join(RUN, vm.id, 'qmp.sock'));
    try {
      await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 1 << 30, 'downtime-limit': 300 });
      await qmp.execute('migrate', { uri: `tcp:${state.targetIp}:${state.port}` });
      for (;;) {
        const q = await qmp.execute('query-migrate');
        if (q.status === 'completed') {
          await cf.put(key, { ...state, phase: 'completed', totalMs: q['total-time'], downtimeMs: q.downtime, ramBytes: q.ram?.transferred, setupMs: q['setup-time'] });
          break;
        }
        if (q.status === 'failed' || q.status === 'cancelled') {
          await cf.put(key, { ...state, phase: 'failed', reason: q['error-desc'] || q.status });
          break;
        }
        await sleep(200);
      }
    } finally {
      qmp.close();
    }
  }
}

async function reconcile(accel) {
  // Linearizable, as the migration record read with it: a member's stale list still naming a
  // finished migration, beside its record already gone, made the target start a second incoming
  // QEMU over the migrated VM (seen in provider-vm-reality-proof).
  const all = (await cf.list(`${K}/vms/`)).map((x) => x.value);
  const vms = all.filter((v) => v.worker === NODE);
  const incoming = all.filter((v) => v.migration?.to === NODE);
  const active = await units('plasmavmc-vm@*.service');
  for (const vm of [...vms, ...incoming].filter((v) => v.migration && v.desired === 'running')) {
    try {
      await migrationStep(vm, accel);
    } catch (e) {
      await cf.put(`${K}/migrations/${vm.id}`, { phase: 'failed', reason: `${NODE}: ${e.message}` });
    }
  }
  for (const vm of vms) {
    if (vm.migration) continue; // the source keeps running it as it is until the move
    const unit = unitOf(vm.id);
    const state = active[unit] || 'inactive';
    try {
      if (vm.desired === 'running') {
        if (state === 'failed' && started.get(vm.id) === vm.generation) {
          const result = (await run('systemctl', ['show', '-p', 'Result', '--value', unit])).trim();
          await publish(vm.id, { state: 'failed', reason: `${unit} failed (${result}); see its journal on ${NODE}`, generation: vm.generation, accel });
          continue;
        }
        if (state !== 'active' || started.get(vm.id) !== vm.generation) {
          const missing = missingTaps(vm);
          if (missing.length) {
            await publish(vm.id, { state: 'waiting', reason: `tap ${missing.join(', ')} not made by prismnet-agent yet`, generation: vm.generation });
            continue;
          }
          const down = await unreachableDisks(vm);
          if (down.length) {
            await publish(vm.id, { state: 'waiting', reason: `volume ${down.join(', ')} not exported yet`, generation: vm.generation });
            continue;
          }
          await startVm(vm, accel);
        }
        if (started.get(vm.id) === vm.generation)
          await publish(vm.id, { state: 'running', unit, accel, generation: vm.generation, qmp: `${RUN}/${vm.id}/qmp.sock`, console: `${vmDir(vm.id)}/console.log` });
      } else {
        if (state !== 'inactive') await run('systemctl', ['stop', unit]);
        started.delete(vm.id);
        if (vm.desired === 'deleted') {
          fs.rmSync(path.join(RUN, vm.id), { recursive: true, force: true });
          fs.rmSync(vmDir(vm.id), { recursive: true, force: true });
        }
        await publish(vm.id, { state: vm.desired === 'deleted' ? 'deleted' : 'stopped', generation: vm.generation });
      }
    } catch (e) {
      await publish(vm.id, { state: 'failed', reason: e.message, generation: vm.generation, accel });
    }
  }
  // A unit whose VM is gone from here (deleted, migrated, or an abandoned incoming one) is stopped.
  const ids = new Set([...vms, ...incoming].map((v) => v.id));
  for (const [unit, state] of Object.entries(active)) {
    const id = unit.replace(/^plasmavmc-vm@|\.service$/g, '');
    if (ids.has(id)) continue;
    if (state !== 'inactive') await run('systemctl', ['stop', unit]);
    await run('systemctl', ['reset-failed', unit]).catch(() => {});
    started.delete(id);
    published.delete(id);
  }
}

let trigger = () => {};
(async () => {
  const { accel, reason } = await probeAccel();
  console.log(`plasmavmc-agent on ${NODE}: accelerator ${accel} (${reason})`);
  const info = () => ({ name: NODE, ip: IP, accel, accelReason: reason, memoryMiB: Math.floor(os.totalmem() / 1048576), cpus: os.cpus().length, agentPort: PORT });
  cf.register(`${K}/workers/${NODE}`, info, 15);
  trigger = reconciler('plasmavmc-agent', () => reconcile(accel), 15000);
  cf.watch([`${K}/vms/`, `${K}/migrations/`], trigger);
  serve('plasmavmc-agent', PORT, {
    'GET /health': async () => [200, { status: 'ok', service: 'plasmavmc-agent', ...info() }],
    'GET /v1/vms/:id/console': async (_r, p, _b, url) => {
      if (!/^v[0-9a-f]{10}$/.test(p.id)) throw fail(400, 'id must be a VM id');
      const file = path.join(vmDir(p.id), 'console.log');
      if (!fs.existsSync(file)) throw fail(404, `no console for vm ${p.id} on ${NODE}`);
      const bytes = Math.min(Number(url.searchParams.get('bytes')) || 65536, 1 << 20);
      const size = fs.statSync(file).size;
      const fd = fs.openSync(file, 'r');
      const buf = Buffer.alloc(Math.min(bytes, size));
      fs.readSync(fd, buf, 0, buf.length, size - buf.length);
      fs.closeSync(fd);
      return [200, { vm: p.id, worker: NODE, size, console: buf.toString('utf8') }];
    },
  });
})();
