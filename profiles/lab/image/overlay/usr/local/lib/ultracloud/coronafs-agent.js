// coronafs-agent (lab): exports the volumes placed on this node over NBD, one qemu-nbd per volume
// (coronafs-export@<id>.service, --shared so a migration's source and target both reach it),
// backed by a raw file under /var/lib/coronafs. On workers it runs on its own (node-local
// volumes); on the control plane control-apis.js runs it in the "controller" role.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { chainfire, reconciler } = require('./chainfire.js');
const { run, units } = require('./host-cmd.js');

const NODE = process.env.NODE_NAME;
const IP = process.env.CLUSTER_IP;
const K = '/ultracloud/coronafs';
const DATA = '/var/lib/coronafs';
const cf = chainfire();
const published = new Map();

const unitOf = (id) => `coronafs-export@${id}.service`;

async function publish(id, status) {
  const text = JSON.stringify(status);
  if (published.get(id) === text) return;
  await cf.put(`${K}/status/${id}`, { ...status, node: NODE, at: new Date().toISOString() });
  published.set(id, text);
}

async function reconcile() {
  const mine = (await cf.list(`${K}/volumes/`, { serializable: true })).map((x) => x.value).filter((v) => v.node === NODE);
  const active = await units('coronafs-export@*.service');
  fs.mkdirSync(DATA, { recursive: true });
  fs.mkdirSync('/run/coronafs', { recursive: true });
  for (const v of mine) {
    const file = path.join(DATA, `${v.id}.img`);
    if (!fs.existsSync(file)) {
      // What the volume starts with (a guest's config), on disk before it is exported: a power
      // cut right after must not leave an empty volume, or none.
      const fd = fs.openSync(`${file}.part`, 'w');
      fs.writeSync(fd, Buffer.from(v.seed || '', 'base64'));
      fs.ftruncateSync(fd, v.sizeMiB * 1048576);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(`${file}.part`, file);
      const dir = fs.openSync(DATA, 'r');
      fs.fsyncSync(dir);
      fs.closeSync(dir);
    }
    fs.writeFileSync(`/run/coronafs/${v.id}.env`, `NBD_PORT=${v.port}\n`);
    if (active[unitOf(v.id)] !== 'active') await run('systemctl', ['start', unitOf(v.id)]);
    await publish(v.id, { state: 'exported', port: v.port, file, sizeMiB: v.sizeMiB });
  }
  // Volumes deleted (or never ours): their export stops and their data goes.
  const ids = new Set(mine.map((v) => v.id));
  for (const unit of Object.keys(active)) {
    const id = unit.replace(/^coronafs-export@|\.service$/g, '');
    if (ids.has(id)) continue;
    await run('systemctl', ['stop', unit]);
    fs.rmSync(path.join(DATA, `${id}.img`), { force: true });
    fs.rmSync(`/run/coronafs/${id}.env`, { force: true });
    await cf.del(`${K}/status/${id}`);
    published.delete(id);
  }
}

/** Register this node's exporter and serve its volumes (control-apis.js runs it as the controller role). */
function startExporter(role) {
  cf.register(`${K}/agents/${NODE}`, { node: NODE, ip: IP, role }, 15);
  const trigger = reconciler('coronafs-agent', reconcile);
  cf.watch([`${K}/volumes/`], trigger);
  console.log(`coronafs exporter on ${NODE} (${role}) serving from ${DATA}`);
}

if (require.main === module) startExporter(process.env.CORONAFS_ROLE || 'worker');
module.exports = { startExporter };
