// prismnet (lab) control API: tenant networks (CIDR, VXLAN id, MTU, static routes), ports (MAC, IP, binding),
// security groups and service IPs (a network address balanced over backend ports),
// state in chainfire, every call scoped to the caller's tenant (the subject of its iam token).
// The data plane (bridges, VXLAN, taps, DHCP) is prismnet-agent's, on each worker.
'use strict';
const { serve, fail, field } = require('./http-json.js');
const { guarded } = require('./iam-auth.js');
const { chainfire } = require('./chainfire.js');
const { isName, newId, ownedIn, uniqueBytes } = require('./tenant-store.js');
const ip4 = require('./ipv4.js');

const PORT = Number(process.env.PRISMNET_PORT || 8110);
const cf = chainfire();
const K = '/ultracloud/prismnet';
const VNI_FIRST = 4096;

/** Registered agents; `{ serializable: true }` for /health (no leader round trip for a liveness probe). */
const agents = async (o) => (await cf.list(`${K}/agents/`, o)).map((x) => x.value);

const owned = ownedIn(cf, K);

async function networkView(net) {
  const status = Object.fromEntries((await cf.list(`${K}/status/${net.id}/`)).map((x) => [x.value.node, x.value]));
  return { ...net, dataplane: status };
}

async function allocateVni(netId) {
  for (let vni = VNI_FIRST; vni < VNI_FIRST + 4096; vni++) if (await cf.create(`${K}/vni/${vni}`, netId)) return vni;
  throw fail(507, 'no VXLAN id left');
}

async function allocateIp(net, portId, wanted) {
  const cidr = ip4.parseCidr(net.cidr);
  const candidates = wanted ? [ip4.toInt(wanted)] : [];
  for (let h = ip4.firstPortHost; !wanted && h < cidr.size - 1; h++) candidates.push(cidr.base + h);
  for (const n of candidates) {
    if (n < cidr.base + ip4.firstPortHost || n >= cidr.base + cidr.size - 1)
      throw fail(400, `ip must be a host address of ${net.cidr} from .${ip4.firstPortHost} (got ${wanted})`);
    if (await cf.create(`${K}/ips/${net.id}/${ip4.toIp(n)}`, portId)) return ip4.toIp(n);
  }
  throw fail(409, wanted ? `ip ${wanted} is already in use on network ${net.id}` : `network ${net.id} has no free address`);
}

const PROTOCOLS = ['tcp', 'udp', 'icmp'];
/** Ingress rules: protocol, optional port (tcp/udp), source CIDR. Anything else to a guarded port is dropped. */
function checkRules(rules) {
  if (!Array.isArray(rules) || rules.length > 32) throw fail(400, 'rules must be a list of up to 32 rules');
  return rules.map((r, i) => {
    if (!r || typeof r !== 'object') throw fail(400, `rules[${i}] must be an object`);
    if (!PROTOCOLS.includes(r.protocol)) throw fail(400, `rules[${i}].protocol must be one of ${PROTOCOLS.join(', ')}`);
    if (r.port !== undefined && (r.protocol === 'icmp' || !Number.isInteger(r.port) || r.port < 1 || r.port > 65535))
      throw fail(400, `rules[${i}].port must be 1-65535, and only for tcp or udp`);
    const from = r.from ?? '0.0.0.0/0';
    if (from !== '0.0.0.0/0' && !ip4.parseCidrAny(from)) throw fail(400, `rules[${i}].from must be an IPv4 CIDR such as 10.240.0.0/24`);
    return { protocol: r.protocol, ...(r.port ? { port: r.port } : {}), from };
  });
}

/** Security group ids a tenant owns (each checked), for a port. */
async function ownGroups(ids, tenant) {
  if (!Array.isArray(ids) || ids.length > 8 || !ids.every((x) => typeof x === 'string')) throw fail(400, 'securityGroups must be a list of up to 8 ids');
  for (const id of ids) await owned('security-groups', id, tenant);
  return [...new Set(ids)];
}

/** A static route for a network's guests (DHCP option 121): a destination off the network, a next hop on it. */
function checkRoute(net, body) {
  const destination = field(body, 'destination', (v) => ip4.parseCidrAny(v) !== null, 'an aligned IPv4 CIDR such as 192.0.2.0/24');
  const nextHop = field(body, 'nextHop', (v) => typeof v === 'string' && ip4.IP_RE.test(v), 'an IPv4 address on the network');
  const cidr = ip4.parseCidr(net.cidr);
  if (ip4.overlaps(ip4.parseCidrAny(destination), cidr)) throw fail(400, `destination ${destination} overlaps the network's own ${net.cidr}`);
  const hop = ip4.toInt(nextHop);
  if (hop <= cidr.base || hop >= cidr.base + cidr.size - 1) throw fail(400, `nextHop ${nextHop} is not a host address of ${net.cidr}`);
  return { destination, nextHop };
}

/** A service IP's backends: up to 16 distinct ports of the tenant, all on the service IP's network. */
async function ownBackends(ids, net, tenant) {
  if (!Array.isArray(ids) || ids.length > 16 || !ids.every((x) => typeof x === 'string'))
    throw fail(400, 'backends must be a list of up to 16 port ids');
  for (const id of ids) {
    const { value: port } = await owned('ports', id, tenant);
    if (port.network !== net.id) throw fail(400, `backend port ${id} is on network ${port.network}, not ${net.id}`);
  }
  return [...new Set(ids)];
}

const mac = () => `52:54:00:${[...uniqueBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
const tapOf = (portId) => `pnt${portId.slice(1)}`;

serve('prismnet', PORT, {
  'GET /health': async () => {
    const a = await agents({ serializable: true });
    return [200, { status: 'ok', service: 'prismnet', node: process.env.NODE_NAME, agents: a.map((x) => x.node).sort() }];
  },
  'GET /v1/agents': guarded(async () => [200, { agents: await agents() }]),

  'POST /v1/networks': guarded(async (_r, _p, body, _u, { tenant }) => {
    const name = field(body, 'name', isName, 'a lowercase name of up to 32 characters');
    const cidrText = field(body, 'cidr', (v) => ip4.parseCidr(v) !== null, 'an aligned IPv4 network from /16 to /28, e.g. 10.240.1.0/24');
    const mtu = field(body, 'mtu', (v) => Number.isInteger(v) && v >= 576 && v <= 1450, 'an integer from 576 to 1450 (VXLAN overhead)', 1450);
    const egress = field(body, 'egress', (v) => typeof v === 'boolean', 'true (its guests reach the cluster network through the DHCP worker, masqueraded) or false', false);
    const cidr = ip4.parseCidr(cidrText);
    const mine = (await cf.list(`${K}/networks/`)).map((x) => x.value).filter((n) => n.tenant === tenant);
    const clash = mine.find((n) => ip4.overlaps(cidr, ip4.parseCidr(n.cidr)));
    if (clash) throw fail(409, `cidr ${cidrText} overlaps network ${clash.id} (${clash.name}, ${clash.cidr})`);
    if (mine.some((n) => n.name === name)) throw fail(409, `this tenant already has a network named ${name}`);
    const workers = (await agents()).map((x) => x.node).sort();
    if (!workers.length) throw fail(503, 'no prismnet agent is registered: no worker can serve DHCP for a network');
    const id = newId('n');
    const vni = await allocateVni(id);
    const net = { id, tenant, name, cidr: cidrText, mtu, vni, egress, gateway: ip4.gateway(cidr), routes: [], dhcpServer: ip4.dhcpServer(cidr), dhcpWorker: workers[0], createdAt: new Date().toISOString() };
    await cf.put(`${K}/networks/${id}`, net);
    return [201, net];
  }),
  'GET /v1/networks': guarded(async (_r, _p, _b, _u, { tenant }) => [
    200,
    { networks: (await cf.list(`${K}/networks/`)).map((x) => x.value).filter((n) => n.tenant === tenant) },
  ]),
  'GET /v1/networks/:id': guarded(async (_r, p, _b, _u, { tenant }) => [200, await networkView((await owned('networks', p.id, tenant)).value)]),
  /** Add a static route its guests take over DHCP (a lease taken after this carries it). */
  'POST /v1/networks/:id/routes': guarded(async (_r, p, body, _u, { tenant }) => {
    const got = await owned('networks', p.id, tenant);
    const route = checkRoute(got.value, body);
    const routes = got.value.routes || [];
    if (routes.some((r) => r.destination === route.destination)) throw fail(409, `network ${p.id} already routes ${route.destination}`);
    if (routes.length >= 16) throw fail(409, `network ${p.id} has 16 routes, the most a DHCP option carries here`);
    const next = { ...got.value, routes: [...routes, route] };
    if (!(await cf.update(`${K}/networks/${p.id}`, next, got.modRevision))) throw fail(409, `network ${p.id} changed meanwhile; retry`);
    return [201, next];
  }),
  'DELETE /v1/networks/:id/routes': guarded(async (_r, p, _b, url, { tenant }) => {
    const got = await owned('networks', p.id, tenant);
    const destination = url.searchParams.get('destination');
    const routes = got.value.routes || [];
    if (!routes.some((r) => r.destination === destination)) throw fail(404, `network ${p.id} has no route to ${destination} (give ?destination=<cidr>)`);
    const next = { ...got.value, routes: routes.filter((r) => r.destination !== destination) };
    if (!(await cf.update(`${K}/networks/${p.id}`, next, got.modRevision))) throw fail(409, `network ${p.id} changed meanwhile; retry`);
    return [200, next];
  }),
  'DELETE /v1/networks/:id': guarded(async (_r, p, _b, _u, { tenant }) => {
    const { value: net } = await owned('networks', p.id, tenant);
    const ports = (await cf.list(`${K}/ports/`)).map((x) => x.value).filter((x) => x.network === net.id);
    if (ports.length) throw fail(409, `network ${net.id} still has ports: ${ports.map((x) => x.id).join(', ')}`);
    const sips = (await cf.list(`${K}/service-ips/`)).map((x) => x.value).filter((x) => x.network === net.id);
    if (sips.length) throw fail(409, `network ${net.id} still has service IPs: ${sips.map((x) => x.id).join(', ')}`);
    await cf.del(`${K}/networks/${net.id}`);
    await cf.del(`${K}/vni/${net.vni}`);
    return [200, { deleted: net.id }];
  }),

  'POST /v1/networks/:id/ports': guarded(async (_r, p, body, _u, { tenant }) => {
    const { value: net } = await owned('networks', p.id, tenant);
    const name = field(body, 'name', isName, 'a lowercase name of up to 32 characters', '');
    const wanted = field(body, 'ip', (v) => typeof v === 'string' && ip4.IP_RE.test(v), 'an IPv4 address', '');
    const securityGroups = await ownGroups(body.securityGroups ?? [], tenant);
    const id = newId('p');
    const ip = await allocateIp(net, id, wanted);
    const port = { id, tenant, network: net.id, name, mac: mac(), ip, securityGroups, binding: null, createdAt: new Date().toISOString() };
    await cf.put(`${K}/ports/${id}`, port);
    return [201, port];
  }),
  'GET /v1/ports': guarded(async (_r, _p, _b, url, { tenant }) => {
    const net = url.searchParams.get('network');
    const ports = (await cf.list(`${K}/ports/`)).map((x) => x.value).filter((x) => x.tenant === tenant && (!net || x.network === net));
    return [200, { ports }];
  }),
  /** Replace a port's security groups (an empty list opens it again). */
  'PUT /v1/ports/:id/security-groups': guarded(async (_r, p, body, _u, { tenant }) => {
    const got = await owned('ports', p.id, tenant);
    const securityGroups = await ownGroups(field(body, 'securityGroups', Array.isArray, 'a list of security group ids'), tenant);
    const next = { ...got.value, securityGroups };
    if (!(await cf.update(`${K}/ports/${p.id}`, next, got.modRevision))) throw fail(409, `port ${p.id} changed meanwhile; retry`);
    return [200, next];
  }),
  'POST /v1/security-groups': guarded(async (_r, _p, body, _u, { tenant }) => {
    const name = field(body, 'name', isName, 'a lowercase name of up to 32 characters');
    const rules = checkRules(field(body, 'rules', Array.isArray, 'a list of ingress rules'));
    const sg = { id: newId('g'), tenant, name, rules, createdAt: new Date().toISOString() };
    await cf.put(`${K}/security-groups/${sg.id}`, sg);
    return [201, sg];
  }),
  'GET /v1/security-groups': guarded(async (_r, _p, _b, _u, { tenant }) => [
    200,
    { securityGroups: (await cf.list(`${K}/security-groups/`)).map((x) => x.value).filter((g) => g.tenant === tenant) },
  ]),
  'DELETE /v1/security-groups/:id': guarded(async (_r, p, _b, _u, { tenant }) => {
    await owned('security-groups', p.id, tenant);
    const users = (await cf.list(`${K}/ports/`)).map((x) => x.value).filter((x) => (x.securityGroups || []).includes(p.id));
    if (users.length) throw fail(409, `security group ${p.id} is used by port(s) ${users.map((x) => x.id).join(', ')}`);
    await cf.del(`${K}/security-groups/${p.id}`);
    return [200, { deleted: p.id }];
  }),
  /**
   * A service IP: an address of the network (from its pool) whose TCP `port` the network's DHCP
   * worker balances over the backend ports' addresses, connection by connection.
   */
  'POST /v1/networks/:id/service-ips': guarded(async (_r, p, body, _u, { tenant }) => {
    const { value: net } = await owned('networks', p.id, tenant);
    const name = field(body, 'name', isName, 'a lowercase name of up to 32 characters');
    const port = field(body, 'port', (v) => Number.isInteger(v) && v >= 1 && v <= 65535, 'a TCP port from 1 to 65535');
    const backends = await ownBackends(field(body, 'backends', Array.isArray, 'a list of port ids'), net, tenant);
    const mine = (await cf.list(`${K}/service-ips/`)).map((x) => x.value).filter((x) => x.network === net.id);
    if (mine.some((x) => x.name === name)) throw fail(409, `network ${net.id} already has a service IP named ${name}`);
    const id = newId('s');
    const ip = await allocateIp(net, id);
    const sip = { id, tenant, network: net.id, name, ip, port, backends, createdAt: new Date().toISOString() };
    await cf.put(`${K}/service-ips/${id}`, sip);
    return [201, sip];
  }),
  'GET /v1/service-ips': guarded(async (_r, _p, _b, url, { tenant }) => {
    const net = url.searchParams.get('network');
    const sips = (await cf.list(`${K}/service-ips/`)).map((x) => x.value).filter((x) => x.tenant === tenant && (!net || x.network === net));
    return [200, { serviceIps: sips }];
  }),
  'GET /v1/service-ips/:id': guarded(async (_r, p, _b, _u, { tenant }) => [200, (await owned('service-ips', p.id, tenant)).value]),
  /** Replace the backends (an empty list: the address stays, its port refuses connections). */
  'PUT /v1/service-ips/:id/backends': guarded(async (_r, p, body, _u, { tenant }) => {
    const got = await owned('service-ips', p.id, tenant);
    const { value: net } = await owned('networks', got.value.network, tenant);
    const backends = await ownBackends(field(body, 'backends', Array.isArray, 'a list of port ids'), net, tenant);
    const next = { ...got.value, backends };
    if (!(await cf.update(`${K}/service-ips/${p.id}`, next, got.modRevision))) throw fail(409, `service IP ${p.id} changed meanwhile; retry`);
    return [200, next];
  }),
  'DELETE /v1/service-ips/:id': guarded(async (_r, p, _b, _u, { tenant }) => {
    const { value: sip } = await owned('service-ips', p.id, tenant);
    await cf.del(`${K}/service-ips/${sip.id}`);
    await cf.del(`${K}/ips/${sip.network}/${sip.ip}`);
    return [200, { deleted: sip.id }];
  }),
  'GET /v1/ports/:id': guarded(async (_r, p, _b, _u, { tenant }) => [200, (await owned('ports', p.id, tenant)).value]),
  'DELETE /v1/ports/:id': guarded(async (_r, p, _b, _u, { tenant }) => {
    const { value: port } = await owned('ports', p.id, tenant);
    if (port.binding) throw fail(409, `port ${port.id} is bound to vm ${port.binding.vm} on ${port.binding.worker}; delete the vm first`);
    const users = (await cf.list(`${K}/service-ips/`)).map((x) => x.value).filter((x) => x.backends.includes(port.id));
    if (users.length) throw fail(409, `port ${port.id} is a backend of service IP(s) ${users.map((x) => x.id).join(', ')}`);
    await cf.del(`${K}/ports/${port.id}`);
    await cf.del(`${K}/ips/${port.network}/${port.ip}`);
    return [200, { deleted: port.id }];
  }),
  /** Record that a VM on a worker uses the port: the worker's agent then makes its tap and DHCP entry. */
  'POST /v1/ports/:id/bind': guarded(async (_r, p, body, _u, { tenant }) => {
    const got = await owned('ports', p.id, tenant);
    const worker = field(body, 'worker', isName, 'a worker node name');
    const vm = field(body, 'vm', isName, 'the id of the VM using the port');
    const port = got.value;
    if (port.binding) throw fail(409, `port ${port.id} is already bound to vm ${port.binding.vm} on ${port.binding.worker}`);
    const registered = (await agents()).map((x) => x.node);
    if (!registered.includes(worker))
      throw fail(409, `worker ${worker} has no registered prismnet agent (registered: ${registered.join(', ') || 'none'})`);
    const bound = { ...port, binding: { worker, vm, tap: tapOf(port.id), at: new Date().toISOString() } };
    if (!(await cf.update(`${K}/ports/${port.id}`, bound, got.modRevision))) throw fail(409, `port ${port.id} changed while binding; retry`);
    return [200, bound];
  }),
  /** A migration is coming: the port's tap is made on `worker` too (null: the migration was abandoned). */
  'POST /v1/ports/:id/prepare-move': guarded(async (_r, p, body, _u, { tenant }) => {
    const got = await owned('ports', p.id, tenant);
    const vm = field(body, 'vm', isName, 'the id of the VM that migrates');
    const worker = field(body, 'worker', (v) => v === null || isName(v), 'the migration target worker, or null');
    const b = got.value.binding;
    if (!b || b.vm !== vm) throw fail(409, `port ${p.id} is not bound to vm ${vm}`);
    if (worker === b.worker) throw fail(409, `port ${p.id} is already bound on ${worker}`);
    const next = { ...got.value, binding: { ...b, migratingTo: worker } };
    if (!(await cf.update(`${K}/ports/${p.id}`, next, got.modRevision))) throw fail(409, `port ${p.id} changed meanwhile; retry`);
    return [200, next];
  }),
  /** The migration completed: the binding is on `worker` now (the old worker's tap goes). */
  'POST /v1/ports/:id/move': guarded(async (_r, p, body, _u, { tenant }) => {
    const got = await owned('ports', p.id, tenant);
    const vm = field(body, 'vm', isName, 'the id of the VM that migrated');
    const worker = field(body, 'worker', isName, 'the worker the VM now runs on');
    const b = got.value.binding;
    if (!b || b.vm !== vm) throw fail(409, `port ${p.id} is not bound to vm ${vm}`);
    const next = { ...got.value, binding: { worker, vm, tap: b.tap, at: new Date().toISOString() } };
    if (!(await cf.update(`${K}/ports/${p.id}`, next, got.modRevision))) throw fail(409, `port ${p.id} changed meanwhile; retry`);
    return [200, next];
  }),
  'POST /v1/ports/:id/unbind': guarded(async (_r, p, body, _u, { tenant }) => {
    const got = await owned('ports', p.id, tenant);
    const vm = field(body, 'vm', isName, 'the id of the VM releasing the port');
    if (!got.value.binding) return [200, got.value];
    if (got.value.binding.vm !== vm) throw fail(409, `port ${p.id} is bound to vm ${got.value.binding.vm}, not ${vm}`);
    const free = { ...got.value, binding: null };
    if (!(await cf.update(`${K}/ports/${p.id}`, free, got.modRevision))) throw fail(409, `port ${p.id} changed while unbinding; retry`);
    return [200, free];
  }),
});
