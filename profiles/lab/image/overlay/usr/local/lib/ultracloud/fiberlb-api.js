// fiberlb (lab) API: load balancers (a frontend port on the gateway), pools (how a load balancer
// spreads its requests) and backends (address, port, weight, and an admin state: ready, drain or
// maint), kept in chainfire and scoped to the caller's tenant. fiberlb-agent turns them into
// haproxy's config and its runtime state; a pool's live figures come from haproxy itself.
'use strict';
const { serve, fail, field, onlyFields } = require('./http-json.js');
const { guarded } = require('./iam-auth.js');
const { chainfire } = require('./chainfire.js');
const { isName, newId, ownedIn } = require('./tenant-store.js');
const ip4 = require('./ipv4.js');
const runtime = require('./haproxy-runtime.js');

const PORT = Number(process.env.FIBERLB_PORT || 8150);
/** Frontend ports load balancers may take on the gateway. */
const FRONTENDS = [10000, 10999];
const STATES = ['ready', 'drain', 'maint'];
const cf = chainfire();
const K = '/ultracloud/fiberlb';
const owned = ownedIn(cf, K);

const isPort = (v) => Number.isInteger(v) && v >= 1 && v <= 65535;
const mine = async (kind, tenant, where = () => true) => (await cf.list(`${K}/${kind}/`)).map((x) => x.value).filter((v) => v.tenant === tenant && where(v));
const named = async (kind, tenant, name, scope = () => true) => (await mine(kind, tenant, (v) => v.name === name && scope(v))).length > 0;

/** What haproxy (on this node, beside the API) runs for a pool's servers: status, weight, sessions, 2xx answers. */
async function liveServers(pool) {
  try {
    const rows = (await runtime.stats()).filter((r) => r.pxname === `pool_${pool.id}` && r.svname !== 'BACKEND');
    return Object.fromEntries(
      rows.map((r) => [r.svname, { status: r.status, weight: Number(r.weight), current: Number(r.scur), sessions: Number(r.stot), answered2xx: Number(r.hrsp_2xx || 0) }]),
    );
  } catch (e) {
    return { error: e.message };
  }
}

serve('fiberlb', PORT, {
  'GET /health': async () => {
    const haproxy = await runtime.command('show info').then(
      (t) => /^Uptime_sec: (\d+)/m.exec(t)?.[1],
      (e) => e,
    );
    if (haproxy instanceof Error) return [503, { status: 'down', service: 'fiberlb', node: process.env.NODE_NAME, error: haproxy.message }];
    return [200, { status: 'ok', service: 'fiberlb', node: process.env.NODE_NAME, haproxyUptimeSeconds: Number(haproxy) }];
  },

  'POST /v1/loadbalancers': guarded(async (_r, _p, body, _u, { tenant }) => {
    onlyFields(body, ['name', 'port', 'mode']);
    const name = field(body, 'name', isName, 'a lowercase name of up to 32 characters');
    const port = field(body, 'port', (v) => Number.isInteger(v) && v >= FRONTENDS[0] && v <= FRONTENDS[1], `a frontend port from ${FRONTENDS[0]} to ${FRONTENDS[1]}`);
    const mode = field(body, 'mode', (v) => v === 'http' || v === 'tcp', '"http" or "tcp"', 'http');
    if (await named('loadbalancers', tenant, name)) throw fail(409, `a load balancer named ${name} exists`);
    const id = newId('l');
    if (!(await cf.create(`${K}/frontends/${port}`, id))) throw fail(409, `frontend port ${port} is taken`);
    const lb = { id, tenant, name, port, mode, address: process.env.CLUSTER_IP, createdAt: new Date().toISOString() };
    await cf.put(`${K}/loadbalancers/${id}`, lb);
    return [201, lb];
  }),
  'GET /v1/loadbalancers': guarded(async (_r, _p, _b, _u, { tenant }) => [200, { loadbalancers: await mine('loadbalancers', tenant) }]),
  'GET /v1/loadbalancers/:id': guarded(async (_r, p, _b, _u, { tenant }) => [200, (await owned('loadbalancers', p.id, tenant)).value]),
  'DELETE /v1/loadbalancers/:id': guarded(async (_r, p, _b, _u, { tenant }) => {
    const { value: lb } = await owned('loadbalancers', p.id, tenant);
    const pools = await mine('pools', tenant, (x) => x.loadbalancer === lb.id);
    if (pools.length) throw fail(409, `load balancer ${lb.id} still has pools ${pools.map((x) => x.id).join(', ')}; delete them first`);
    await cf.del(`${K}/loadbalancers/${lb.id}`);
    await cf.del(`${K}/frontends/${lb.port}`);
    return [200, { deleted: lb.id }];
  }),

  'POST /v1/pools': guarded(async (_r, _p, body, _u, { tenant }) => {
    onlyFields(body, ['name', 'loadbalancer', 'algorithm', 'healthPath']);
    const name = field(body, 'name', isName, 'a lowercase name of up to 32 characters');
    const lbId = field(body, 'loadbalancer', (v) => typeof v === 'string', 'a load balancer id');
    const algorithm = field(body, 'algorithm', (v) => ['roundrobin', 'leastconn', 'source'].includes(v), 'roundrobin, leastconn or source', 'roundrobin');
    const healthPath = field(body, 'healthPath', (v) => typeof v === 'string' && /^\/[\x21-\x7e]{0,127}$/.test(v), 'an HTTP path such as /health', '');
    const { value: lb } = await owned('loadbalancers', lbId, tenant);
    if ((await mine('pools', tenant, (x) => x.loadbalancer === lb.id)).length) throw fail(409, `load balancer ${lb.id} already has its pool`);
    if (await named('pools', tenant, name)) throw fail(409, `a pool named ${name} exists`);
    const pool = { id: newId('q'), tenant, name, loadbalancer: lb.id, algorithm, healthPath, createdAt: new Date().toISOString() };
    await cf.put(`${K}/pools/${pool.id}`, pool);
    return [201, pool];
  }),
  'GET /v1/pools': guarded(async (_r, _p, _b, _u, { tenant }) => [200, { pools: await mine('pools', tenant) }]),
  'GET /v1/pools/:id': guarded(async (_r, p, _b, _u, { tenant }) => {
    const { value: pool } = await owned('pools', p.id, tenant);
    return [200, { ...pool, backends: await mine('backends', tenant, (b) => b.pool === pool.id), live: await liveServers(pool) }];
  }),
  'DELETE /v1/pools/:id': guarded(async (_r, p, _b, _u, { tenant }) => {
    const { value: pool } = await owned('pools', p.id, tenant);
    const left = await mine('backends', tenant, (b) => b.pool === pool.id);
    if (left.length) throw fail(409, `pool ${pool.id} still has backends ${left.map((b) => b.id).join(', ')}; delete them first`);
    await cf.del(`${K}/pools/${pool.id}`);
    return [200, { deleted: pool.id }];
  }),

  'POST /v1/pools/:id/backends': guarded(async (_r, p, body, _u, { tenant }) => {
    onlyFields(body, ['name', 'address', 'port', 'weight']);
    const got = await cf.get(`${K}/pools/${p.id}`);
    if (!got || got.value.tenant !== tenant) throw fail(404, `no pool ${p.id}: a backend needs an existing pool`);
    const pool = got.value;
    const name = field(body, 'name', isName, 'a lowercase name of up to 32 characters');
    const address = field(body, 'address', (v) => typeof v === 'string' && ip4.IP_RE.test(v), 'an IPv4 address');
    const port = field(body, 'port', isPort, 'a port from 1 to 65535');
    const weight = field(body, 'weight', (v) => Number.isInteger(v) && v >= 1 && v <= 256, 'a whole number from 1 to 256', 1);
    if (await named('backends', tenant, name, (b) => b.pool === pool.id)) throw fail(409, `pool ${pool.id} already has a backend named ${name}`);
    const backend = { id: newId('b'), tenant, pool: pool.id, name, address, port, weight, state: 'ready', createdAt: new Date().toISOString() };
    await cf.put(`${K}/backends/${backend.id}`, backend);
    return [201, backend];
  }),
  /** Drain (no new connections; those open finish), maintenance (none), or ready again. */
  'PUT /v1/backends/:id/state': guarded(async (_r, p, body, _u, { tenant }) => {
    onlyFields(body, ['state']);
    const state = field(body, 'state', (v) => STATES.includes(v), STATES.join(', '));
    const got = await owned('backends', p.id, tenant);
    const next = { ...got.value, state };
    if (!(await cf.update(`${K}/backends/${p.id}`, next, got.modRevision))) throw fail(409, `backend ${p.id} changed meanwhile; retry`);
    return [200, next];
  }),
  'DELETE /v1/backends/:id': guarded(async (_r, p, _b, _u, { tenant }) => {
    const { value: b } = await owned('backends', p.id, tenant);
    await cf.del(`${K}/backends/${b.id}`);
    return [200, { deleted: b.id }];
  }),
});
