// fleet-scheduler (lab), on every control-plane node, one active: places the replicas of the
// host-native services the deployer declared (it publishes them to chainfire) onto workers (fleet-placement.js), from the
// node-agents' heartbeats (chainfire leases: a worker whose lease expired is gone), honouring
// drains (maintenance). The leader holds /ultracloud/fleet/leader under its own lease; it writes
// placements only while that key is still its lease's (a deposed leader's write fails), so two
// schedulers never place at once. Every instance serves the API (services are read-only here:
// the deployer declares them); drains need an iam token.
'use strict';
const { serve, fail, field, onlyFields } = require('./http-json.js');
const { guarded } = require('./iam-auth.js');
const { chainfire, reconciler } = require('./chainfire.js');
const { place } = require('./fleet-placement.js');

const PORT = Number(process.env.FLEET_PORT || 8095);
const LEADER_TTL = 10;
const NODE = process.env.NODE_NAME;
const ME = `${NODE}:${process.pid}`;
const K = '/ultracloud/fleet';
const LEADER = `${K}/leader`;
const cf = chainfire();
const b64 = (s) => Buffer.from(s).toString('base64');

const NAME = /^[a-z][a-z0-9-]{0,30}$/;
const nameOf = (v, what) => {
  if (!NAME.test(v)) throw fail(400, `${what} must be a lowercase name of up to 31 characters, got ${JSON.stringify(v).slice(0, 60)}`);
  return v;
};

let lease = null;
let leading = false;

/**
 * Keep or take the leadership. The leader only refreshes its lease; the others read the leader key
 * from their local member (no raft round trip) and campaign only once it is gone: under TCG every
 * quorum write costs all three members CPU, so standing by must cost next to nothing. One campaign
 * at a time, and `lease` is set only by the one that won: two overlapping campaigns (a slow txn
 * under TCG outlasting the 3.3 s interval) once left a leader refreshing the loser's lease while
 * its own, holding the key, expired, so it went on saying it led after another took over.
 */
let campaigning = false;
async function campaign() {
  if (campaigning) return;
  campaigning = true;
  try {
    if (leading) {
      if ((await cf.keepalive(lease)) > 0) return;
      leading = false;
      console.error(`leadership lost: lease ${lease} expired`);
    }
    if ((await cf.count(LEADER)) > 0) return;
    const mine = await cf.grant(LEADER_TTL);
    const r = await cf.call('/v3/kv/txn', {
      compare: [{ key: b64(LEADER), target: 'CREATE', create_revision: '0' }],
      success: [{ request_put: { key: b64(LEADER), value: b64(JSON.stringify({ id: ME, node: NODE, since: new Date().toISOString() })), lease: mine } }],
    });
    if (r.succeeded !== true) return;
    lease = mine;
    leading = true;
    console.error(`leading (lease ${lease})`);
    void trigger();
  } catch (e) {
    if (leading) console.error(`leadership lost: ${e.message}`);
    leading = false;
  } finally {
    campaigning = false;
  }
}

/** Put or delete a placement only while this process's lease still holds the leader key. */
async function asLeader(op) {
  const r = await cf.call('/v3/kv/txn', { compare: [{ key: b64(LEADER), target: 'LEASE', lease }], success: [op] });
  if (r.succeeded !== true) {
    leading = false;
    throw new Error('no longer the leader');
  }
}

/** What chainfire holds: services, heartbeats, drains, placements. */
async function view() {
  const [services, beats, drains, placements] = await Promise.all(
    ['services/', 'nodes/', 'drain/', 'placements/'].map((p) => cf.list(`${K}/${p}`)),
  );
  return {
    services: services.map((x) => x.value),
    beats: new Map(beats.map((x) => [x.value.node, x.value])),
    drains: new Map(drains.map((x) => [x.value.node, x.value])),
    placements: placements.map((x) => ({ key: x.key, ...x.value })),
  };
}

const knownNodes = (v) => [...new Set([...v.beats.keys(), ...v.drains.keys(), ...v.placements.map((p) => p.node).filter(Boolean)])].sort();

function why(from, to, v) {
  if (!from) return to ? 'placed' : 'pending: no eligible worker';
  const cause = v.drains.has(from) ? 'drained' : !v.beats.has(from) ? 'heartbeat lease expired' : 'rebalanced';
  return to ? `moved from ${from}: ${cause}` : `pending: ${from} ${cause}, no other eligible worker`;
}

async function reconcile() {
  if (!leading) return;
  const v = await view();
  const nodes = knownNodes(v).map((n) => ({ name: n, alive: v.beats.has(n), drained: v.drains.has(n) }));
  const current = Object.fromEntries(v.placements.map((p) => [`${p.service}/${p.index}`, p.node]));
  const desired = place(v.services, nodes, current);
  const ports = new Map(v.services.map((s) => [s.name, s.port]));
  for (const [key, node] of Object.entries(desired)) {
    const had = v.placements.find((p) => `${p.service}/${p.index}` === key);
    if (had && had.node === node && had.port === ports.get(had.service)) continue;
    const [service, index] = key.split('/');
    const value = { service, index: Number(index), node, port: ports.get(service), since: new Date().toISOString(), reason: why(had?.node, node, v) };
    await asLeader({ request_put: { key: b64(`${K}/placements/${key}`), value: b64(JSON.stringify(value)) } });
    console.error(`${key}: ${had?.node ?? '-'} -> ${node ?? 'pending'} (${value.reason})`);
  }
  for (const p of v.placements)
    if (!(`${p.service}/${p.index}` in desired)) await asLeader({ request_delete_range: { key: b64(p.key) } });
}

// Watch-driven; the resync only backs up a missed event.
const trigger = reconciler('fleet-scheduler', reconcile);
cf.watch([`${K}/services/`, `${K}/nodes/`, `${K}/drain/`], trigger);
void campaign();
setInterval(campaign, (LEADER_TTL * 1000) / 3);

async function nodeOrThrow(node) {
  nameOf(node, 'node');
  if (!knownNodes(await view()).includes(node)) throw fail(404, `no worker ${node} has sent a heartbeat or holds an instance`);
  return node;
}

serve('fleet-scheduler', PORT, {
  'GET /health': async () => [200, { status: 'ok', service: 'fleet-scheduler', node: NODE, leading }],
  'GET /v1/leader': async () => [200, (await cf.get(LEADER))?.value ?? null],
  'GET /v1/services': async () => {
    const v = await view();
    return [200, v.services.map((s) => ({ ...s, placements: v.placements.filter((p) => p.service === s.name).sort((a, b) => a.index - b.index) }))];
  },
  'GET /v1/nodes': async () => {
    const v = await view();
    return [
      200,
      knownNodes(v).map((n) => ({
        node: n,
        alive: v.beats.has(n),
        drained: v.drains.has(n),
        heartbeat: v.beats.get(n) ?? null,
        instances: v.placements.filter((p) => p.node === n).map((p) => `${p.service}/${p.index}`),
      })),
    ];
  },
  'PUT /v1/nodes/:node/drain': guarded(async (_r, p, body) => {
    const node = await nodeOrThrow(p.node);
    onlyFields(body, ['reason']);
    const reason = field(body, 'reason', (x) => typeof x === 'string' && x.length <= 200, 'a string of up to 200 characters', 'maintenance');
    await cf.put(`${K}/drain/${node}`, { node, reason, at: new Date().toISOString() });
    return [200, { node, drained: true, reason }];
  }),
  'DELETE /v1/nodes/:node/drain': guarded(async (_r, p) => {
    const node = await nodeOrThrow(p.node);
    await cf.del(`${K}/drain/${node}`);
    return [200, { node, drained: false }];
  }),
});
