// Host commands for the lab's agents: argv only (never a shell), stderr in the error.
'use strict';
const { execFile } = require('node:child_process');

const run = (cmd, args, timeout = 30000) =>
  new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout, maxBuffer: 16 << 20 }, (e, stdout, stderr) =>
      e ? reject(new Error(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || e.message}`)) : resolve(stdout),
    ),
  );
const runOk = (cmd, args) => run(cmd, args).then(() => true, () => false);

/** ifname -> `ip -d -j link` entry. */
async function links() {
  return Object.fromEntries(JSON.parse(await run('ip', ['-d', '-j', 'link', 'show'])).map((l) => [l.ifname, l]));
}

/** The interface holding this node's cluster address (the NIC VXLAN and migrations use). */
async function nicWithAddress(ip) {
  for (const l of JSON.parse(await run('ip', ['-j', '-4', 'addr', 'show'])))
    if ((l.addr_info || []).some((a) => a.local === ip)) return l.ifname;
  throw new Error(`no interface holds ${ip}`);
}

/** Units matching a glob with their active state: { 'x@1.service': 'active' }. */
async function units(glob) {
  const out = await run('systemctl', ['list-units', '--all', '--plain', '--no-legend', '--full', glob]);
  return Object.fromEntries(
    out.split('\n').filter(Boolean).map((l) => {
      const [unit, , active] = l.trim().split(/\s+/);
      return [unit, active];
    }),
  );
}

module.exports = { run, runOk, links, nicWithAddress, units };
