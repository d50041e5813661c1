// prismnet-agent (lab): applies the declared tenant networks to this worker. Per network a bridge
// and a VXLAN device over the cluster NIC with static flood entries for the other workers; a tap
// per port bound here; on the network's DHCP worker, dnsmasq with one reservation per bound port.
// Unbinding a port removes its tap and its DHCP lease. Security groups become nftables rules; service IPs
// become addresses on the DHCP worker's bridge balanced by nftables DNAT.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { chainfire, reconciler } = require('./chainfire.js');
const { run, links, nicWithAddress, units } = require('./host-cmd.js');
const ip4 = require('./ipv4.js');

const NODE = process.env.NODE_NAME;
const IP = process.env.CLUSTER_IP;
const K = '/ultracloud/prismnet';
const STATE = '/var/lib/prismnet';
const FLOOD = '00:00:00:00:00:00';
const cf = chainfire();
const published = new Map();
const watched = new Set();

const bridgeOf = (net) => `pnb${net.vni}`;
const vxlanOf = (net) => `pnx${net.vni}`;
const dhcpUnit = (net) => `prismnet-dhcp@${net.vni}.service`;
const dhcpDir = (net) => path.join(STATE, String(net.vni));

async function ensureNetwork(net, nic, have, peers) {
  const br = bridgeOf(net);
  const vx = vxlanOf(net);
  if (!have[br]) await run('ip', ['link', 'add', br, 'type', 'bridge']);
  await run('ip', ['link', 'set', br, 'mtu', String(net.mtu), 'up']);
  if (!have[vx])
    await run('ip', ['link', 'add', vx, 'type', 'vxlan', 'id', String(net.vni), 'local', IP, 'dev', nic, 'dstport', '4789', 'nolearning']);
  await run('ip', ['link', 'set', vx, 'master', br, 'mtu', String(net.mtu), 'up']);
  const fdb = JSON.parse(await run('bridge', ['-j', 'fdb', 'show', 'dev', vx]));
  const flood = new Set(fdb.filter((e) => e.mac === FLOOD && e.dst).map((e) => e.dst));
  for (const p of peers) if (!flood.has(p)) await run('bridge', ['fdb', 'append', FLOOD, 'dev', vx, 'dst', p]);
  for (const d of flood) if (!peers.includes(d)) await run('bridge', ['fdb', 'del', FLOOD, 'dev', vx, 'dst', d]);
}

function readLeases(file) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => {
      const [expires, mac, ip] = l.split(' ');
      return { expires: Number(expires), mac, ip };
    });
  } catch {
    return [];
  }
}

/** The network's static routes as DHCP option 121 (classless static routes), forced: udhcpc does not ask for it. */
const routesOption = (net) =>
  net.routes?.length ? ` --dhcp-option-force=121,${net.routes.map((r) => `${r.destination},${r.nextHop}`).join(',')}` : '';

/** dnsmasq for the network: reservations for its bound ports only; leases of unbound ports dropped; its routes as option 121. */
async function ensureDhcp(net, ports, active) {
  const cidr = ip4.parseCidr(net.cidr);
  const dir = dhcpDir(net);
  fs.mkdirSync(dir, { recursive: true });
  await run('ip', ['addr', 'replace', `${net.dhcpServer}/${cidr.prefix}`, 'dev', bridgeOf(net)]);
  const bound = ports.filter((p) => p.network === net.id && p.binding);
  const hosts = bound.map((p) => `${p.mac},${p.ip}\n`).join('');
  const hostsFile = path.join(dir, 'hosts');
  const leaseFile = path.join(dir, 'leases');
  const oldHosts = fs.existsSync(hostsFile) ? fs.readFileSync(hostsFile, 'utf8') : null;
  const macs = new Set(bound.map((p) => p.mac));
  const stale = readLeases(leaseFile).filter((l) => !macs.has(l.mac));
  const env = `DNSMASQ_ARGS=--interface=${bridgeOf(net)} --dhcp-range=${ip4.toIp(cidr.base)},static,${ip4.netmask(cidr.prefix)},1h --dhcp-hostsfile=${hostsFile} --dhcp-leasefile=${leaseFile} --dhcp-option-force=26,${net.mtu}${routesOption(net)}\n`;
  const envFile = `/run/prismnet/dhcp-${net.vni}.env`;
  fs.mkdirSync('/run/prismnet', { recursive: true });
  const envChanged = !fs.existsSync(envFile) || fs.readFileSync(envFile, 'utf8') !== env;
  // Written only when changed: the directory is watched, and a write would trigger another reconcile (a busy loop).
  if (oldHosts !== hosts) fs.writeFileSync(hostsFile, hosts);
  if (envChanged) fs.writeFileSync(envFile, env);
  const unit = dhcpUnit(net);
  if (stale.length || envChanged) {
    // dnsmasq keeps leases in memory and rewrites the file: drop them while it is stopped.
    await run('systemctl', ['stop', unit]);
    const keep = readLeases(leaseFile).filter((l) => macs.has(l.mac));
    fs.writeFileSync(leaseFile, keep.map((l) => `${l.expires} ${l.mac} ${l.ip} * *\n`).join(''));
    await run('systemctl', ['start', unit]);
  } else if (active[unit] !== 'active') await run('systemctl', ['start', unit]);
  else if (oldHosts !== hosts) await run('systemctl', ['kill', '--signal=HUP', unit]);
  if (!watched.has(dir)) {
    watched.add(dir);
    fs.watch(dir, (_event, file) => file === 'leases' && trigger()); // a new lease is news for the network's published status
  }
}

/**
 * Security groups as nftables rules in one bridge-family table, replaced atomically: traffic
 * bridged out to a guarded port's tap is accepted when it answers a connection (conntrack), is
 * ARP or a DHCP reply, or matches one of its groups' ingress rules; everything else is dropped.
 */
let appliedRules = null;
function renderRules(here, groups) {
  const guarded = here.filter((p) => (p.securityGroups || []).length);
  const lines = ['table bridge prismnet {}', 'flush table bridge prismnet', 'table bridge prismnet {'];
  lines.push('  chain forward {', '    type filter hook forward priority 0; policy accept;');
  for (const p of guarded) lines.push(`    oifname "${p.binding.tap}" jump sg_${p.id}`);
  lines.push('  }');
  for (const p of guarded) {
    lines.push(`  chain sg_${p.id} {`, '    ct state established,related accept', '    ether type arp accept', '    udp sport 67 udp dport 68 accept');
    for (const r of p.securityGroups.flatMap((id) => groups.get(id)?.rules || [])) {
      const from = r.from === '0.0.0.0/0' ? '' : `ip saddr ${r.from} `;
      const what = r.protocol === 'icmp' ? 'icmp type echo-request' : r.port ? `${r.protocol} dport ${r.port}` : `meta l4proto ${r.protocol}`;
      lines.push(`    ${from}${what} accept`);
    }
    lines.push('    drop', '  }');
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

async function applyRules(here, groups) {
  const text = renderRules(here, groups);
  if (text === appliedRules) return;
  fs.mkdirSync('/run/prismnet', { recursive: true });
  fs.writeFileSync('/run/prismnet/security-groups.nft', text);
  await run('nft', ['-f', '/run/prismnet/security-groups.nft']);
  appliedRules = text;
}

/**
 * Service IPs and egress, on their network's DHCP worker, in one ip-family table replaced
 * atomically: a new connection to a service IP's port is DNATed to the backends in turn, and
 * SNATed to the bridge's own address so the reply comes back through here (client and backend
 * share the network). A network with egress has its guests' connections out of the data NIC
 * masqueraded behind this worker's cluster address (guests route via the bridge's address).
 * Forwarding carries these flows only: the forward chain drops whatever was not DNATed here or
 * leaves an egress network, so a tenant cannot route through the worker otherwise; a service IP
 * refuses every other port.
 */
let appliedServiceIps = null;
let appliedForward = null;
function renderServiceIps(sips, nets, ports, nic) {
  const egress = nets.filter((n) => n.egress);
  // Nothing served here: no table at all, so no NAT hook makes conntrack follow every packet.
  if (!sips.length && !egress.length) return 'table ip prismnet_svc {}\ndelete table ip prismnet_svc\n';
  const ipOf = new Map(ports.map((p) => [p.id, p.ip]));
  const lines = ['table ip prismnet_svc {}', 'flush table ip prismnet_svc', 'table ip prismnet_svc {'];
  lines.push('  chain prerouting {', '    type nat hook prerouting priority dstnat; policy accept;');
  for (const s of sips) {
    const to = s.backends.map((b) => ipOf.get(b)).filter(Boolean);
    if (to.length) lines.push(`    ip daddr ${s.ip} tcp dport ${s.port} dnat to numgen inc mod ${to.length} map { ${to.map((ip, i) => `${i} : ${ip}`).join(', ')} }`);
  }
  lines.push('  }', '  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;');
  for (const n of nets.filter((x) => sips.some((s) => s.network === x.id))) lines.push(`    oifname "${bridgeOf(n)}" ct status dnat snat to ${n.dhcpServer}`);
  for (const n of egress) lines.push(`    iifname "${bridgeOf(n)}" oifname "${nic}" masquerade`);
  lines.push('  }', '  chain forward {', '    type filter hook forward priority filter; policy drop;', '    ct status dnat accept');
  if (egress.length) lines.push('    ct state established,related accept');
  for (const n of egress) lines.push(`    iifname "${bridgeOf(n)}" oifname "${nic}" accept`);
  lines.push('  }');
  lines.push('  chain input {', '    type filter hook input priority filter; policy accept;');
  for (const s of sips) lines.push(`    ip daddr ${s.ip} meta l4proto tcp reject with tcp reset`, `    ip daddr ${s.ip} meta l4proto != icmp drop`);
  lines.push('  }', '}');
  return `${lines.join('\n')}\n`;
}

async function applyServiceIps(sips, nets, ports, nic) {
  const text = renderServiceIps(sips, nets, ports, nic);
  if (text !== appliedServiceIps) {
    fs.mkdirSync('/run/prismnet', { recursive: true });
    fs.writeFileSync('/run/prismnet/service-ips.nft', text);
    await run('nft', ['-f', '/run/prismnet/service-ips.nft']);
    appliedServiceIps = text;
  }
  // Only once the forward chain guards it; no redirects telling a client to skip the balancer.
  const forward = sips.length || nets.some((n) => n.egress) ? 1 : 0;
  if (forward !== appliedForward) {
    await run('sysctl', ['-qw', `net.ipv4.ip_forward=${forward}`, 'net.ipv4.conf.all.send_redirects=0']);
    appliedForward = forward;
  }
  // Each address on its network's bridge (a /32 beside the DHCP server's); addresses of deleted ones go.
  const want = new Map(nets.map((n) => [bridgeOf(n), new Set(sips.filter((s) => s.network === n.id).map((s) => s.ip))]));
  for (const l of JSON.parse(await run('ip', ['-j', '-4', 'addr', 'show']))) {
    if (!/^pnb\d+$/.test(l.ifname)) continue;
    const wanted = want.get(l.ifname) || new Set();
    for (const a of l.addr_info || []) if (a.prefixlen === 32 && !wanted.has(a.local)) await run('ip', ['addr', 'del', `${a.local}/32`, 'dev', l.ifname]);
    for (const ip of wanted) if (!(l.addr_info || []).some((a) => a.local === ip)) await run('ip', ['addr', 'add', `${ip}/32`, 'dev', l.ifname]);
  }
}

async function publish(net, have) {
  const status = {
    node: NODE,
    bridge: have[bridgeOf(net)] ? bridgeOf(net) : null,
    vxlan: have[vxlanOf(net)] ? vxlanOf(net) : null,
    flood: have[vxlanOf(net)]
      ? JSON.parse(await run('bridge', ['-j', 'fdb', 'show', 'dev', vxlanOf(net)])).filter((e) => e.mac === FLOOD).map((e) => e.dst).sort()
      : [],
    taps: Object.values(have).filter((l) => l.master === bridgeOf(net) && l.ifname.startsWith('pnt')).map((l) => l.ifname).sort(),
    leases: net.dhcpWorker === NODE ? readLeases(path.join(dhcpDir(net), 'leases')).map(({ mac, ip }) => ({ mac, ip })) : [],
  };
  const key = `${K}/status/${net.id}/${NODE}`;
  const text = JSON.stringify(status);
  if (published.get(key) === text) return;
  await cf.put(key, status);
  published.set(key, text);
}

async function reconcile() {
  const [nets, ports, agents, sgs, sips] = await Promise.all(
    ['networks', 'ports', 'agents', 'security-groups', 'service-ips'].map((k) => cf.list(`${K}/${k}/`, { serializable: true }).then((l) => l.map((x) => x.value))),
  );
  const nic = await nicWithAddress(IP);
  const peers = agents.filter((a) => a.node !== NODE).map((a) => a.ip).sort();
  // Bound here, or arriving here by live migration (both workers hold a tap until the move).
  const here = ports.filter((p) => p.binding?.worker === NODE || p.binding?.migratingTo === NODE);
  const wanted = nets.filter((n) => n.dhcpWorker === NODE || here.some((p) => p.network === n.id));
  let have = await links();
  const active = await units('prismnet-dhcp@*.service');
  for (const net of wanted) {
    await ensureNetwork(net, nic, have, peers);
    have = await links();
    for (const p of here.filter((x) => x.network === net.id)) {
      const tap = p.binding.tap;
      if (!have[tap]) await run('ip', ['tuntap', 'add', 'dev', tap, 'mode', 'tap', 'vnet_hdr']);
      await run('ip', ['link', 'set', tap, 'master', bridgeOf(net), 'mtu', String(net.mtu), 'up']);
    }
    if (net.dhcpWorker === NODE) await ensureDhcp(net, ports, active);
  }
  await applyRules(here, new Map(sgs.map((g) => [g.id, g])));
  const served = wanted.filter((n) => n.dhcpWorker === NODE);
  await applyServiceIps(sips.filter((x) => served.some((n) => n.id === x.network)), served, ports, nic);
  // Everything of ours that is no longer declared goes: taps of unbound ports, networks gone from here.
  const taps = new Set(here.map((p) => p.binding.tap));
  const devs = new Set(wanted.flatMap((n) => [bridgeOf(n), vxlanOf(n)]));
  for (const name of Object.keys(have)) {
    if ((name.startsWith('pnt') && !taps.has(name)) || (/^pn[bx]\d+$/.test(name) && !devs.has(name))) await run('ip', ['link', 'del', name]);
  }
  const dhcpWanted = new Set(wanted.filter((n) => n.dhcpWorker === NODE).map(dhcpUnit));
  for (const [unit, state] of Object.entries(active)) {
    if (dhcpWanted.has(unit)) continue;
    if (state !== 'inactive') await run('systemctl', ['stop', unit]);
    fs.rmSync(path.join(STATE, unit.replace(/^prismnet-dhcp@|\.service$/g, '')), { recursive: true, force: true });
  }
  have = await links();
  for (const net of wanted) await publish(net, have);
  for (const key of published.keys()) {
    if (!wanted.some((n) => key === `${K}/status/${n.id}/${NODE}`)) {
      await cf.del(key);
      published.delete(key);
    }
  }
}

cf.register(`${K}/agents/${NODE}`, { node: NODE, ip: IP }, 15);
const trigger = reconciler('prismnet-agent', reconcile);
cf.watch([`${K}/networks/`, `${K}/ports/`, `${K}/agents/`, `${K}/security-groups/`, `${K}/service-ips/`], trigger);
console.log(`prismnet-agent on ${NODE} (${IP}) reconciling`);
