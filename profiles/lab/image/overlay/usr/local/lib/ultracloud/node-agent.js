// node-agent (lab), on each worker: its heartbeat is a chainfire lease (the scheduler's sign of
// life), and it runs the instances fleet-scheduler placed here as systemd units, host-local
// reconcile only: a unit written under /run (gone with the boot) and started for each placement
// here, stopped and removed for each that left. Pid metadata per instance under its state dir's
// pids/; an instance's log is its unit's journal. Upgrades are replace-and-reconcile.
// An instance is busybox's httpd serving who it is (a Node process per instance would cost
// seconds of CPU to start under TCG, and failover time with it).
'use strict';
const fs = require('node:fs');
const { serve } = require('./http-json.js');
const { chainfire, reconciler } = require('./chainfire.js');
const { run, units } = require('./host-cmd.js');

const NODE = process.env.NODE_NAME;
const PORT = Number(process.env.NODE_AGENT_PORT || 8096);
const HEARTBEAT_TTL = Number(process.env.NODE_AGENT_TTL || 10);
const STATE = process.env.NODE_AGENT_STATE || '/var/lib/node-agent';
const PIDS = `${STATE}/pids`;
const UNITS = '/run/systemd/system';
const WWW = '/run/node-agent/www';
const K = '/ultracloud/fleet';
const cf = chainfire();
const started = new Date().toISOString();

const unitOf = (p) => `fleet-${p.service}-${p.index}.service`;
const wwwOf = (p) => `${WWW}/${p.service}-${p.index}`;
const unitFile = (p) => `[Unit]
Description=fleet instance ${p.service}/${p.index} (placed here by fleet-scheduler)

[Service]
ExecStart=/bin/busybox httpd -f -p ${p.port} -h ${wwwOf(p)}
ExecStartPost=/usr/local/lib/ultracloud/wait-listening ${p.port}
DynamicUser=yes
Restart=on-failure
RestartSec=1
`;

/** What runs here, as this agent's pid files say (the status API's answer). */
function instances() {
  return fs
    .readdirSync(PIDS)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(`${PIDS}/${f}`, 'utf8')));
}

async function reconcile() {
  // Linearizable: a lagging member's list could still name an instance that left (and restart it here).
  const mine = (await cf.list(`${K}/placements/`)).map((x) => x.value).filter((p) => p.node === NODE);
  const wanted = new Map(mine.map((p) => [unitOf(p), p]));
  const changed = new Set();
  for (const [unit, p] of wanted) {
    const path = `${UNITS}/${unit}`;
    const text = unitFile(p);
    if (fs.existsSync(path) && fs.readFileSync(path, 'utf8') === text) continue;
    fs.mkdirSync(wwwOf(p), { recursive: true });
    fs.writeFileSync(`${wwwOf(p)}/index.html`, JSON.stringify({ service: p.service, index: p.index, node: NODE, since: new Date().toISOString() }));
    fs.writeFileSync(path, text);
    changed.add(unit);
  }
  let reload = changed.size > 0;
  const present = fs.readdirSync(UNITS).filter((f) => /^fleet-.*\.service$/.test(f));
  const leaving = present.filter((u) => !wanted.has(u));
  for (const unit of leaving) {
    await run('systemctl', ['stop', unit]).catch((e) => console.error(e.message));
    fs.rmSync(`${UNITS}/${unit}`, { force: true });
    fs.rmSync(`${WWW}/${unit.slice('fleet-'.length, -'.service'.length)}`, { recursive: true, force: true });
    console.error(`${unit}: stopped (no longer placed here)`);
    reload = true;
  }
  // Pid files outlive a reboot (the units under /run do not): only placements here keep theirs.
  for (const f of fs.readdirSync(PIDS)) if (!wanted.has(f.replace(/\.json$/, ''))) fs.rmSync(`${PIDS}/${f}`, { force: true });
  if (reload) await run('systemctl', ['daemon-reload']);
  const state = await units('fleet-*.service');
  for (const [unit, p] of wanted) {
    if (state[unit] !== 'active' || changed.has(unit)) {
      await run('systemctl', ['restart', unit], 60000);
      console.error(`${unit}: started`);
    }
    const pid = Number((await run('systemctl', ['show', '-p', 'MainPID', '--value', unit])).trim());
    const meta = { unit, service: p.service, index: p.index, port: p.port, pid, placedSince: p.since };
    const file = `${PIDS}/${unit}.json`;
    const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (old !== JSON.stringify(meta)) fs.writeFileSync(file, JSON.stringify(meta));
  }
}

fs.mkdirSync(PIDS, { recursive: true });
cf.register(`${K}/nodes/${NODE}`, () => ({ node: NODE, ip: process.env.CLUSTER_IP, agentSince: started }), HEARTBEAT_TTL);
// Watch-driven; the resync only backs up a missed event (systemd restarts a failed instance itself).
const trigger = reconciler('node-agent', reconcile);
cf.watch([`${K}/placements/`], trigger);

serve('node-agent', PORT, {
  'GET /health': async () => [200, { status: 'ok', service: 'node-agent', node: NODE, instances: instances() }],
});
