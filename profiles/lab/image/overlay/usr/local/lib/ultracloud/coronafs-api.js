// coronafs (lab) control API: volumes exported over NBD, either from a controller node or
// node-local on a worker; state in chainfire, scoped to the caller's tenant. A volume outlives
// the VM it is attached to (at most one at a time). coronafs-agent on the export node serves it.
'use strict';
const { serve, fail, field } = require('./http-json.js');
const { guarded } = require('./iam-auth.js');
const { chainfire } = require('./chainfire.js');
const { isName, newId, ownedIn } = require('./tenant-store.js');

const PORT = Number(process.env.CORONAFS_PORT || 8120);
const NBD_FIRST = 10810;
/** A new volume may start with up to this many bytes of the tenant's (a guest's config in its first blocks). */
const SEED_MAX = 4096;
const cf = chainfire();
const K = '/ultracloud/coronafs';
const owned = ownedIn(cf, K);
/** Registered agents; `{ serializable: true }` for /health (no leader round trip for a liveness probe). */
const agents = async (o) => (await cf.list(`${K}/agents/`, o)).map((x) => x.value);

async function volumeView(v) {
  const s = await cf.get(`${K}/status/${v.id}`);
  return { ...v, status: s ? s.value : { state: 'pending' } };
}

/** An NBD port on the export node, held by a chainfire key so two volumes never share one. */
async function allocatePort(node, volumeId) {
  for (let p = NBD_FIRST; p < NBD_FIRST + 1000; p++) if (await cf.create(`${K}/nbd-ports/${node}/${p}`, volumeId)) return p;
  throw fail(507, `no NBD port left on ${node}`);
}

/** Set or clear a volume's attachment only if nobody changed it meanwhile. */
async function setAttachment(id, tenant, change) {
  const got = await owned('volumes', id, tenant);
  const next = change(got.value);
  if (!(await cf.update(`${K}/volumes/${id}`, next, got.modRevision))) throw fail(409, `volume ${id} changed meanwhile; retry`);
  return next;
}

serve('coronafs', PORT, {
  'GET /health': async () => {
    const a = await agents({ serializable: true });
    return [200, { status: 'ok', service: 'coronafs', node: process.env.NODE_NAME, agents: a.map(({ node, role }) => ({ node, role })) }];
  },
  'POST /v1/volumes': guarded(async (_r, _p, body, _u, { tenant }) => {
    const name = field(body, 'name', isName, 'a lowercase name of up to 32 characters');
    const sizeMiB = field(body, 'sizeMiB', (v) => Number.isInteger(v) && v >= 1 && v <= 4096, 'an integer from 1 to 4096');
    const kind = field(body, 'kind', (v) => v === 'controller' || v === 'local', '"controller" (exported by a control-plane node) or "local" (by the worker named in node)', 'controller');
    const seed = field(body, 'seed', (v) => typeof v === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(v) && Buffer.from(v, 'base64').length <= SEED_MAX, `base64 of at most ${SEED_MAX} bytes, written at the start of the new volume`, '');
    const registered = await agents();
    let node;
    if (kind === 'local') {
      node = field(body, 'node', isName, 'the worker that exports a local volume');
      if (!registered.some((a) => a.node === node && a.role === 'worker'))
        throw fail(409, `node ${node} has no registered coronafs agent on a worker (workers: ${registered.filter((a) => a.role === 'worker').map((a) => a.node).join(', ') || 'none'})`);
    } else {
      node = registered.filter((a) => a.role === 'controller').map((a) => a.node).sort()[0];
      if (!node) throw fail(503, 'no controller coronafs agent is registered');
    }
    const id = newId('d');
    const exportNode = registered.find((a) => a.node === node);
    const volume = { id, tenant, name, sizeMiB, kind, node, host: exportNode.ip, port: await allocatePort(node, id), exportName: id, attachedTo: null, ...(seed ? { seed } : {}), createdAt: new Date().toISOString() };
    await cf.put(`${K}/volumes/${id}`, volume);
    return [201, volume];
  }),
  'GET /v1/volumes': guarded(async (_r, _p, _b, _u, { tenant }) => [
    200,
    { volumes: await Promise.all((await cf.list(`${K}/volumes/`)).map((x) => x.value).filter((v) => v.tenant === tenant).map(volumeView)) },
  ]),
  'GET /v1/volumes/:id': guarded(async (_r, p, _b, _u, { tenant }) => [200, await volumeView((await owned('volumes', p.id, tenant)).value)]),
  'DELETE /v1/volumes/:id': guarded(async (_r, p, _b, _u, { tenant }) => {
    const { value: v } = await owned('volumes', p.id, tenant);
    if (v.attachedTo) throw fail(409, `volume ${v.id} is attached to vm ${v.attachedTo}; delete or detach the vm first`);
    await cf.del(`${K}/volumes/${v.id}`);
    await cf.del(`${K}/nbd-ports/${v.node}/${v.port}`);
    return [200, { deleted: v.id }];
  }),
  'POST /v1/volumes/:id/attach': guarded(async (_r, p, body, _u, { tenant }) => {
    const vm = field(body, 'vm', isName, 'the id of the VM the volume is attached to');
    const v = await setAttachment(p.id, tenant, (cur) => {
      if (cur.attachedTo) throw fail(409, `volume ${cur.id} is already attached to vm ${cur.attachedTo}`);
      return { ...cur, attachedTo: vm };
    });
    return [200, v];
  }),
  'POST /v1/volumes/:id/detach': guarded(async (_r, p, body, _u, { tenant }) => {
    const vm = field(body, 'vm', isName, 'the id of the VM releasing the volume');
    const v = await setAttachment(p.id, tenant, (cur) => {
      if (cur.attachedTo && cur.attachedTo !== vm) throw fail(409, `volume ${cur.id} is attached to vm ${cur.attachedTo}, not ${vm}`);
      return { ...cur, attachedTo: null };
    });
    return [200, v];
  }),
});
