// plasmavmc (lab) control API: images, VMs and the workers that host them, state in chainfire,
// scoped to the caller's tenant. Ports come from prismnet (bound with the caller's token); the
// agent on the VM's worker runs it. VM ids are stable for the VM's whole life.
'use strict';
const { serve, request, sleep, fail, field } = require('./http-json.js');
const { guarded } = require('./iam-auth.js');
const { chainfire } = require('./chainfire.js');
const { isName, newId, ownedIn, uniqueBytes } = require('./tenant-store.js');
const { isHttpUrl, digestOf } = require('./object-image.js');

const PORT = Number(process.env.PLASMAVMC_PORT || 8100);
const PRISMNET = process.env.PRISMNET_ENDPOINT || 'http://127.0.0.1:8110';
const CORONAFS = process.env.CORONAFS_ENDPOINT || 'http://127.0.0.1:8120';
const MIGRATE_WAIT_MS = Number(process.env.PLASMAVMC_MIGRATE_WAIT_MS || 180000);
const DELETE_WAIT_MS = Number(process.env.PLASMAVMC_DELETE_WAIT_MS || 30000);
const cf = chainfire();
const K = '/ultracloud/plasmavmc';
const isInt = (lo, hi) => (v) => Number.isInteger(v) && v >= lo && v <= hi;
const isFileUrl = (v) => typeof v === 'string' && /^file:\/\/\/[^\0]+$/.test(v);
const isImageUrl = (v) => isFileUrl(v) || isHttpUrl(v);
const IMAGE_URL = 'a file:/// URL on the workers, or an http:// URL of an object (a presigned lightningstor GET)';

/** An object's digest, read at import: the workers verify what they fetch against it. A URL that does not answer is the caller's 422. */
async function digestField(name, url) {
  if (!isHttpUrl(url)) return undefined;
  try {
    return await digestOf(url);
  } catch (e) {
    throw fail(422, `${name}: ${e.message}`);
  }
}

/** Registered agents; `{ serializable: true }` for /health (no leader round trip for a liveness probe). */
const workers = async (o) => (await cf.list(`${K}/workers/`, o)).map((x) => x.value);

const owned = ownedIn(cf, K);

async function vmView(vm) {
  const status = await cf.get(`${K}/status/${vm.id}`);
  return { ...vm, status: status ? status.value : { state: 'pending' } };
}

/** prismnet or coronafs, as the caller: the token travels with the request, so tenancy is theirs to enforce. */
const asCaller = (service, base) => async (req, method, path, body) => {
  const r = await request(method, `${base}${path}`, body, { authorization: req.headers.authorization });
  if (r.status >= 300) throw fail(r.status, `${service} ${method} ${path}: ${r.body?.error || r.status}`);
  return r.body;
};
const prismnet = asCaller('prismnet', PRISMNET);
const coronafs = asCaller('coronafs', CORONAFS);

/** Give back what a VM holds: its ports' bindings and its volumes' attachments. */
async function release(req, vm) {
  for (const n of vm.nics) await prismnet(req, 'POST', `/v1/ports/${n.port}/unbind`, { vm: vm.id });
  for (const d of vm.disks) await coronafs(req, 'POST', `/v1/volumes/${d.volume}/detach`, { vm: vm.id });
}

/** Change what the agent should do with a VM (optimistic: retried when the record moved underneath). */
async function setVm(id, tenant, change) {
  for (let i = 0; i < 5; i++) {
    const got = await owned('vms', id, tenant);
    if (got.value.desired === 'deleted') throw fail(409, `vm ${id} is being deleted`);
    const next = { ...got.value, ...change(got.value) };
    if (await cf.update(`${K}/vms/${id}`, next, got.modRevision)) return next;
  }
  throw fail(409, `vm ${id} keeps changing; retry`);
}

serve('plasmavmc', PORT, {
  'GET /health': async () => {
    const w = await workers({ serializable: true });
    return [200, { status: 'ok', service: 'plasmavmc', node: process.env.NODE_NAME, workers: w.map(({ name, accel }) => ({ name, accel })) }];
  },
  'GET /v1/workers': guarded(async () => [200, { workers: await workers() }]),

  'POST /v1/images': guarded(async (_r, _p, body, _u, { tenant }) => {
    const name = field(body, 'name', isName, 'a lowercase name of up to 32 characters');
    const kernel = field(body, 'kernel', isImageUrl, IMAGE_URL);
    const initrd = field(body, 'initrd', isImageUrl, IMAGE_URL);
    const cmdline = field(body, 'cmdline', (v) => typeof v === 'string' && v.length < 512 && !/[\n\0]/.test(v), 'one line of kernel arguments', '');
    const digests = { kernel: await digestField('kernel', kernel), initrd: await digestField('initrd', initrd) };
    const image = { id: newId('i'), tenant, name, kernel, initrd, digests, cmdline, createdAt: new Date().toISOString() };
    await cf.put(`${K}/images/${image.id}`, image);
    return [201, image];
  }),
  'GET /v1/images': guarded(async (_r, _p, _b, _u, { tenant }) => [
    200,
    { images: (await cf.list(`${K}/images/`)).map((x) => x.value).filter((i) => i.tenant === tenant) },
  ]),
  'DELETE /v1/images/:id': guarded(async (_r, p, _b, _u, { tenant }) => {
    await owned('images', p.id, tenant);
    await cf.del(`${K}/images/${p.id}`);
    return [200, { deleted: p.id }];
  }),

  'POST /v1/vms': guarded(async (req, _p, body, _u, { tenant }) => {
    const name = field(body, 'name', isName, 'a lowercase name of up to 32 characters');
    const imageId = field(body, 'image', (v) => typeof v === 'string', 'an image id');
    const worker = field(body, 'worker', isName, 'the name of a registered worker');
    const vcpus = field(body, 'vcpus', isInt(1, 4), 'an integer from 1 to 4', 1);
    const memoryMiB = field(body, 'memoryMiB', isInt(64, 2048), 'an integer from 64 to 2048', 128);
    const ports = field(body, 'ports', (v) => Array.isArray(v) && v.length <= 4 && v.every((x) => typeof x === 'string'), 'a list of up to 4 prismnet port ids', []);
    const volumes = field(body, 'volumes', (v) => Array.isArray(v) && v.length <= 4 && v.every((x) => typeof x === 'string'), 'a list of up to 4 coronafs volume ids', []);
    if (new Set(ports).size !== ports.length) throw fail(400, 'ports lists a port twice');
    if (new Set(volumes).size !== volumes.length) throw fail(400, 'volumes lists a volume twice');
    const image = (await owned('images', imageId, tenant)).value;
    const registered = await workers();
    if (!registered.some((w) => w.name === worker))
      throw fail(409, `worker ${worker} is not registered with plasmavmc (registered: ${registered.map((w) => w.name).join(', ') || 'none'})`);
    const id = newId('v');
    const held = { nics: [], disks: [] };
    try {
      for (const port of ports) {
        const b = await prismnet(req, 'POST', `/v1/ports/${port}/bind`, { worker, vm: id });
        held.nics.push({ port, network: b.network, mac: b.mac, ip: b.ip, tap: b.binding.tap });
      }
      for (const volume of volumes) {
        const v = await coronafs(req, 'POST', `/v1/volumes/${volume}/attach`, { vm: id });
        held.disks.push({ volume, host: v.host, port: v.port, exportName: v.exportName, kind: v.kind, node: v.node });
      }
    } catch (e) {
      // Everything asked for, not only what answered: a call that timed out here may have bound or
      // attached there. Releasing what this VM does not hold is refused, and ignored.
      for (const port of ports) await prismnet(req, 'POST', `/v1/ports/${port}/unbind`, { vm: id }).catch(() => {});
      for (const volume of volumes) await coronafs(req, 'POST', `/v1/volumes/${volume}/detach`, { vm: id }).catch(() => {});
      throw e;
    }
    const vm = { id, tenant, name, worker, vcpus, memoryMiB, image, nics: held.nics, disks: held.disks, desired: 'running', generation: 1, createdAt: new Date().toISOString() };
    await cf.put(`${K}/vms/${id}`, vm);
    return [201, await vmView(vm)];
  }),
  'GET /v1/vms': guarded(async (_r, _p, _b, _u, { tenant }) => {
    const vms = (await cf.list(`${K}/vms/`)).map((x) => x.value).filter((v) => v.tenant === tenant);
    return [200, { vms: await Promise.all(vms.map(vmView)) }];
  }),
  'GET /v1/vms/:id': guarded(async (_r, p, _b, _u, { tenant }) => [200, await vmView((await owned('vms', p.id, tenant)).value)]),
  'POST /v1/vms/:id/start': guarded(async (_r, p, _b, _u, { tenant }) => [200, await vmView(await setVm(p.id, tenant, () => ({ desired: 'running' })))]),
  'POST /v1/vms/:id/stop': guarded(async (_r, p, _b, _u, { tenant }) => [200, await vmView(await setVm(p.id, tenant, () => ({ desired: 'stopped' })))]),
  'POST /v1/vms/:id/restart': guarded(async (_r, p, _b, _u, { tenant }) => [
    200,
    await vmView(await setVm(p.id, tenant, (vm) => ({ desired: 'running', generation: vm.generation + 1 }))),
  ]),
  'POST /v1/vms/:id/migrate': guarded(async (req, p, body, _u, { tenant }) => {
    const { value: vm } = await owned('vms', p.id, tenant);
    const worker = field(body, 'worker', isName, 'the name of a registered worker');
    if (worker === vm.worker) throw fail(409, `vm ${vm.id} is already on ${worker}`);
    const registered = await workers();
    if (!registered.some((w) => w.name === worker))
      throw fail(409, `worker ${worker} is not registered with plasmavmc (registered: ${registered.map((w) => w.name).join(', ') || 'none'})`);
    const status = (await cf.get(`${K}/status/${vm.id}`))?.value;
    if (vm.desired !== 'running' || status?.state !== 'running') throw fail(409, `vm ${vm.id} is not running (${status?.state || 'pending'}); only a running VM migrates live`);
    if (vm.migration) throw fail(409, `vm ${vm.id} is already migrating to ${vm.migration.to}`);
    const from = vm.worker;
    const t0 = Date.now();
    for (const n of vm.nics) await prismnet(req, 'POST', `/v1/ports/${n.port}/prepare-move`, { vm: vm.id, worker });
    await cf.del(`${K}/migrations/${vm.id}`);
    await setVm(vm.id, tenant, () => ({ migration: { to: worker, port: 49152 + (uniqueBytes(2).readUInt16BE() % 8000), requestedAt: new Date().toISOString() } }));
    let outcome;
    for (;;) {
      outcome = (await cf.get(`${K}/migrations/${vm.id}`))?.value;
      if (outcome?.phase === 'completed' || outcome?.phase === 'failed') break;
      if (Date.now() - t0 > MIGRATE_WAIT_MS) {
        outcome = { phase: 'failed', reason: `no outcome within ${MIGRATE_WAIT_MS / 1000} s (last phase: ${outcome?.phase || 'none: the target never listened'})` };
        break;
      }
      await sleep(250);
    }
    if (outcome.phase !== 'completed') {
      await setVm(vm.id, tenant, () => ({ migration: null }));
      for (const n of vm.nics) await prismnet(req, 'POST', `/v1/ports/${n.port}/prepare-move`, { vm: vm.id, worker: null }).catch(() => {});
      await cf.del(`${K}/migrations/${vm.id}`);
      throw fail(502, `migration of vm ${vm.id} from ${from} to ${worker} failed: ${outcome.reason}; the vm stays on ${from}`);
    }
    for (const n of vm.nics) await prismnet(req, 'POST', `/v1/ports/${n.port}/move`, { vm: vm.id, worker });
    const moved = await setVm(vm.id, tenant, () => ({ worker, migration: null }));
    await cf.del(`${K}/migrations/${vm.id}`);
    const summary = { vm: vm.id, from, to: worker, wallMs: Date.now() - t0, qemuTotalMs: outcome.totalMs, downtimeMs: outcome.downtimeMs, ramBytes: outcome.ramBytes, disks: vm.disks };
    return [200, { ...(await vmView(moved)), migrated: summary }];
  }),
  /** Stop the VM on its worker, then release its ports: the port's tap and lease go with the binding. */
  'DELETE /v1/vms/:id': guarded(async (req, p, _b, _u, { tenant }) => {
    const { value: vm } = await owned('vms', p.id, tenant);
    if (vm.desired !== 'deleted') await setVm(vm.id, tenant, () => ({ desired: 'deleted' }));
    const deadline = Date.now() + DELETE_WAIT_MS;
    for (;;) {
      const s = await cf.get(`${K}/status/${vm.id}`);
      if (!s || s.value.state === 'deleted' || s.value.state === 'pending') break;
      if (Date.now() > deadline)
        throw fail(504, `the agent on ${vm.worker} did not confirm vm ${vm.id} stopped within ${DELETE_WAIT_MS / 1000} s (last state: ${s.value.state}); DELETE again to finish`);
      await sleep(250);
    }
    await release(req, vm);
    await cf.del(`${K}/vms/${vm.id}`);
    await cf.del(`${K}/status/${vm.id}`);
    return [200, { deleted: vm.id, released: [...vm.nics.map((n) => n.port), ...vm.disks.map((d) => d.volume)] }];
  }),
  'GET /v1/vms/:id/console': guarded(async (_r, p, _b, url, { tenant }) => {
    const { value: vm } = await owned('vms', p.id, tenant);
    const w = (await workers()).find((x) => x.name === vm.worker);
    if (!w) throw fail(503, `worker ${vm.worker} is not registered: its console is out of reach`);
    const bytes = Number(url.searchParams.get('bytes')) || 65536;
    const r = await request('GET', `http://${w.ip}:${w.agentPort}/v1/vms/${vm.id}/console?bytes=${bytes}`);
    return [r.status, r.body];
  }),
});
