// fiberlb-agent (lab), on the gateway: renders haproxy's config from the load balancers, pools and
// backends in chainfire, checks it with `haproxy -c`, and reloads haproxy only when it changed
// (the servers' state saved first, so a reload keeps drains); then sets each server's admin state
// (ready, drain, maint) through the runtime API. A drain never touches the other servers.
'use strict';
const fs = require('node:fs');
const { chainfire, reconciler } = require('./chainfire.js');
const { run } = require('./host-cmd.js');
const runtime = require('./haproxy-runtime.js');

const K = '/ultracloud/fiberlb';
const DIR = '/run/fiberlb';
const CONFIG = `${DIR}/haproxy.cfg`;
const STATE_FILE = '/var/lib/fiberlb/server-state';
const UNIT = 'fiberlb-haproxy.service';
/** haproxy's own liveness, on loopback: answers 200 whenever haproxy runs. */
const SELF_PORT = 8151;
const cf = chainfire();

const pxPool = (id) => `pool_${id}`;

function render(lbs, pools, backends) {
  const out = [
    'global',
    '  master-worker',
    `  stats socket ${runtime.SOCKET} mode 600 level admin`,
    `  server-state-file ${STATE_FILE}`,
    'defaults',
    '  timeout connect 3s',
    '  timeout client 30s',
    '  timeout server 30s',
    '  load-server-state-from-file global',
    'frontend fiberlb_self',
    '  mode http',
    `  bind 127.0.0.1:${SELF_PORT}`,
    '  http-request return status 200 content-type text/plain string ok',
  ];
  for (const lb of [...lbs].sort((a, b) => a.port - b.port)) {
    const pool = pools.find((p) => p.loadbalancer === lb.id);
    out.push(`frontend lb_${lb.id}`, `  mode ${lb.mode}`, `  bind :${lb.port}`);
    if (pool) out.push(`  default_backend ${pxPool(pool.id)}`);
    else out.push(lb.mode === 'http' ? '  http-request deny deny_status 503' : '  tcp-request connection reject');
    if (!pool) continue;
    out.push(`backend ${pxPool(pool.id)}`, `  mode ${lb.mode}`, `  balance ${pool.algorithm}`);
    if (pool.healthPath && lb.mode === 'http') out.push(`  option httpchk GET ${pool.healthPath}`);
    for (const b of backends.filter((x) => x.pool === pool.id).sort((x, y) => x.name.localeCompare(y.name)))
      out.push(`  server ${b.name} ${b.address}:${b.port} weight ${b.weight}${pool.healthPath ? ' check inter 2s fall 2 rise 1' : ''}`);
  }
  return `${out.join('\n')}\n`;
}

/**
 * prismnet service IPs are reachable from the edge, so a pool can balance over tenant services:
 * a route to each via its network's DHCP worker, which DNATs it to the backends and SNATs the
 * replies back through itself. The routes carry a protocol number of their own; stale ones go.
 * (Lab limit: two tenants' service IPs at one address share the first one's route.)
 */
const PRISMNET = '/ultracloud/prismnet';
const ROUTE_PROTO = '252';
async function routeServiceIps() {
  const [sips, nets, agents] = await Promise.all(['service-ips', 'networks', 'agents'].map((k) => cf.list(`${PRISMNET}/${k}/`).then((l) => l.map((x) => x.value))));
  const agentIp = new Map(agents.map((a) => [a.node, a.ip]));
  const want = new Map();
  for (const sip of sips) {
    const via = agentIp.get(nets.find((n) => n.id === sip.network)?.dhcpWorker);
    if (via && !want.has(sip.ip)) want.set(sip.ip, via);
  }
  const have = JSON.parse(await run('ip', ['-j', '-4', 'route', 'show', 'proto', ROUTE_PROTO]));
  for (const r of have) if (want.get(r.dst) !== r.gateway) await run('ip', ['route', 'del', `${r.dst}/32`, 'proto', ROUTE_PROTO]);
  for (const [ip, via] of want) if (!have.some((r) => r.dst === ip && r.gateway === via)) await run('ip', ['route', 'replace', `${ip}/32`, 'via', via, 'proto', ROUTE_PROTO]);
}

let applied = null;
async function reconcile() {
  await routeServiceIps();
  const [lbs, pools, backends] = await Promise.all(['loadbalancers', 'pools', 'backends'].map((k) => cf.list(`${K}/${k}/`).then((l) => l.map((x) => x.value))));
  const text = render(lbs, pools, backends);
  fs.mkdirSync(DIR, { recursive: true });
  fs.mkdirSync('/var/lib/fiberlb', { recursive: true });
  const active = (await run('systemctl', ['show', '-P', 'ActiveState', UNIT])).trim();
  if (text !== applied || active !== 'active') {
    fs.writeFileSync(`${CONFIG}.new`, text);
    await run('haproxy', ['-c', '-q', '-f', `${CONFIG}.new`]);
    if (active === 'active') fs.writeFileSync(STATE_FILE, await runtime.serversState());
    fs.renameSync(`${CONFIG}.new`, CONFIG);
    await run('systemctl', [active === 'active' ? 'reload' : 'restart', UNIT], 60000);
    applied = text;
  }
  // Admin states as declared; a reload kept them (state file), a restart is set right here.
  const want = Object.fromEntries(backends.filter((b) => pools.some((p) => p.id === b.pool)).map((b) => [`${pxPool(b.pool)}/${b.name}`, b.state]));
  for (let i = 0; ; i++) {
    const have = await runtime.adminStates().catch(() => null);
    if (have) {
      for (const [server, state] of Object.entries(want)) if (have[server] && have[server] !== state) await runtime.setState(server, state);
      if (Object.keys(want).every((s) => have[s])) break;
    }
    if (i > 50) throw new Error('haproxy did not load every declared server after the reload');
    await new Promise((r) => setTimeout(r, 200));
  }
}

function start() {
  cf.register(`${K}/agent`, { node: process.env.NODE_NAME, ip: process.env.CLUSTER_IP }, 15);
  const trigger = reconciler('fiberlb-agent', reconcile);
  cf.watch([`${K}/loadbalancers/`, `${K}/pools/`, `${K}/backends/`, `${PRISMNET}/service-ips/`, `${PRISMNET}/networks/`], trigger);
}

module.exports = { start, render, SELF_PORT };
