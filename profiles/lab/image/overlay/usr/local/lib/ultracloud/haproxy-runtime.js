// haproxy's runtime API on its admin socket, for fiberlb: one command per connection (haproxy's
// non-interactive mode answers and closes).
'use strict';
const net = require('node:net');

const SOCKET = process.env.FIBERLB_ADMIN_SOCKET || '/run/fiberlb/admin.sock';

function command(line, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    let out = '';
    const s = net.connect(SOCKET);
    s.setTimeout(timeoutMs, () => s.destroy(new Error(`haproxy runtime API: no answer to "${line}" within ${timeoutMs} ms`)));
    s.on('connect', () => s.end(`${line}\n`));
    s.on('data', (d) => (out += d));
    s.on('end', () => resolve(out));
    s.on('error', (e) => reject(new Error(`haproxy runtime API at ${SOCKET}: ${e.message}`)));
  });
}

/** `show stat` as rows keyed by its CSV header: one per frontend, backend and server. */
async function stats() {
  const [header, ...rows] = (await command('show stat')).trim().split('\n');
  const cols = header.replace(/^# /, '').split(',');
  return rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [cols[i], v])));
}

/** Each server's admin state as haproxy holds it: { 'pool_x/web1': 'ready'|'drain'|'maint' }. */
async function adminStates() {
  const out = {};
  for (const r of await stats()) {
    if (r.svname === 'FRONTEND' || r.svname === 'BACKEND') continue;
    out[`${r.pxname}/${r.svname}`] = /MAINT/.test(r.status) ? 'maint' : /DRAIN/.test(r.status) ? 'drain' : 'ready';
  }
  return out;
}

async function setState(server, state) {
  const out = (await command(`set server ${server} state ${state}`)).trim();
  if (out) throw new Error(`haproxy refused "set server ${server} state ${state}": ${out}`);
}

/** The state file a reload loads admin states back from (`server-state-file`). */
const serversState = () => command('show servers state');

module.exports = { command, stats, adminStates, setState, serversState, SOCKET };
