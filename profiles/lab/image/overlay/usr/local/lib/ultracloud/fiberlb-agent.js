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

let applied = null;
async function reconcile() {
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
  cf.watch([`${K}/loadbalancers/`, `${K}/pools/`, `${K}/backends/`], trigger);
}

module.exports = { start, render, SELF_PORT };
