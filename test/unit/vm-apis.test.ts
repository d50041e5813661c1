import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlApis, startControlApis } from '../helpers/control-apis.js';

/**
 * The plasmavmc and prismnet control APIs, the very files the lab image ships, on this host
 * against a real etcd (and the lab's iam): bad input is a 4xx that names the problem and changes
 * nothing, and one tenant cannot see or touch another's networks, ports or VMs.
 */
/** API answers, read field by field as the tests need them. */
// biome-ignore lint/suspicious/noExplicitAny: JSON bodies of several shapes
type Obj = Record<string, any>;
let apis: ControlApis;
let a: string;
let b: string;

async function call(base: string, token: string | null, method: string, path: string, body?: unknown) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Obj };
}
const net = (token: string, method: string, path: string, body?: unknown) => call(apis.prismnet, token, method, path, body);
const vmc = (token: string, method: string, path: string, body?: unknown) => call(apis.plasmavmc, token, method, path, body);
const vol = (token: string, method: string, path: string, body?: unknown) => call(apis.coronafs, token, method, path, body);

/** Everything tenant `token` has, to show a refused call changed nothing. */
async function everything(token: string) {
  return {
    networks: (await net(token, 'GET', '/v1/networks')).body.networks,
    ports: (await net(token, 'GET', '/v1/ports')).body.ports,
    vms: (await vmc(token, 'GET', '/v1/vms')).body.vms,
    volumes: (await vol(token, 'GET', '/v1/volumes')).body.volumes,
  };
}

beforeAll(async () => {
  apis = await startControlApis();
  // Two workers registered, as their agents do at boot.
  for (const w of ['node04', 'node05']) {
    await apis.put(`/ultracloud/plasmavmc/workers/${w}`, { name: w, ip: '10.100.0.21', accel: 'tcg', agentPort: 8101 });
    await apis.put(`/ultracloud/prismnet/agents/${w}`, { node: w, ip: '10.100.0.21' });
    await apis.put(`/ultracloud/coronafs/agents/${w}`, { node: w, ip: '10.100.0.21', role: 'worker' });
  }
  await apis.put('/ultracloud/coronafs/agents/node01', { node: 'node01', ip: '10.100.0.11', role: 'controller' });
  [a, b] = [await apis.token('tenant-a'), await apis.token('tenant-b')];
}, 60_000);
afterAll(async () => apis?.stop());

describe('prismnet, coronafs and plasmavmc control APIs (real etcd, lab iam)', () => {
  let network: Obj;
  let port: Obj;
  let image: Obj;
  let vm: Obj;
  let volume: Obj;

  it('refuse a missing or tampered token with 401', async () => {
    expect((await call(apis.prismnet, null, 'GET', '/v1/networks')).status).toBe(401);
    const r = await net(`${a}x`, 'GET', '/v1/networks');
    expect(r.status).toBe(401);
    expect(r.body.error).toMatch(/iam refused the token: invalid signature/);
  });

  it('create a network, a port, an image and a VM that binds the port', async () => {
    network = (await net(a, 'POST', '/v1/networks', { name: 'web', cidr: '10.240.0.0/24' })).body;
    expect(network).toMatchObject({ vni: 4096, mtu: 1450, dhcpWorker: 'node04', dhcpServer: '10.240.0.2' });
    port = (await net(a, 'POST', `/v1/networks/${network.id}/ports`, { name: 'p0' })).body;
    expect(port).toMatchObject({ ip: '10.240.0.10', binding: null, mac: expect.stringMatching(/^52:54:00:/) });
    image = (await vmc(a, 'POST', '/v1/images', { name: 'inner', kernel: 'file:///k', initrd: 'file:///i' })).body;
    volume = (await vol(a, 'POST', '/v1/volumes', { name: 'data', sizeMiB: 16 })).body;
    expect(volume).toMatchObject({ kind: 'controller', node: 'node01', host: '10.100.0.11', port: 10810, attachedTo: null });
    const r = await vmc(a, 'POST', '/v1/vms', { name: 'vm0', image: image.id, worker: 'node04', ports: [port.id], volumes: [volume.id] });
    expect(r.status, r.body.error).toBe(201);
    vm = r.body;
    expect(vm.nics[0]).toMatchObject({ port: port.id, ip: '10.240.0.10', tap: `pnt${port.id.slice(1)}` });
    expect(vm.disks[0]).toMatchObject({ volume: volume.id, host: '10.100.0.11', port: 10810 });
    expect((await vol(a, 'GET', `/v1/volumes/${volume.id}`)).body.attachedTo).toBe(vm.id);
    const local = await vol(a, 'POST', '/v1/volumes', { name: 'scratch', sizeMiB: 8, kind: 'local', node: 'node05' });
    expect(local.body).toMatchObject({ kind: 'local', node: 'node05', host: '10.100.0.21', port: 10810 });
    expect((await vol(a, 'DELETE', `/v1/volumes/${local.body.id}`)).status).toBe(200);
    expect((await net(a, 'GET', `/v1/ports/${port.id}`)).body.binding).toMatchObject({ worker: 'node04', vm: vm.id });
  });

  it('a network with egress says so; a volume keeps the seed it starts with', async () => {
    const out = await net(a, 'POST', '/v1/networks', { name: 'out', cidr: '10.250.0.0/24', egress: true });
    expect(out.body).toMatchObject({ egress: true });
    expect((await net(a, 'GET', `/v1/networks/${out.body.id}`)).body.egress).toBe(true);
    expect(network.egress).toBe(false);
    const seed = Buffer.from('webapp=1\n').toString('base64');
    const v = await vol(a, 'POST', '/v1/volumes', { name: 'seeded', sizeMiB: 1, seed });
    expect(v.body).toMatchObject({ seed });
    await vol(a, 'DELETE', `/v1/volumes/${v.body.id}`);
    await net(a, 'DELETE', `/v1/networks/${out.body.id}`);
  });

  it('a network takes static routes for its guests (served as DHCP option 121) and drops one by destination', async () => {
    const add = (destination: string) => net(a, 'POST', `/v1/networks/${network.id}/routes`, { destination, nextHop: '10.240.0.20' });
    expect((await add('192.0.2.0/24')).status).toBe(201);
    expect((await add('198.51.100.0/24')).body.routes).toEqual([
      { destination: '192.0.2.0/24', nextHop: '10.240.0.20' },
      { destination: '198.51.100.0/24', nextHop: '10.240.0.20' },
    ]);
    const r = await net(a, 'DELETE', `/v1/networks/${network.id}/routes?destination=198.51.100.0/24`);
    expect(r.status).toBe(200);
    expect((await net(a, 'GET', `/v1/networks/${network.id}`)).body.routes).toEqual([
      { destination: '192.0.2.0/24', nextHop: '10.240.0.20' },
    ]);
  });

  const route = (body: Obj) => net(a, 'POST', `/v1/networks/${network.id}/routes`, body);
  const refusals: [string, () => Promise<{ status: number; body: Obj }>, number, RegExp][] = [
    [
      'a network whose egress is not a boolean',
      () => net(a, 'POST', '/v1/networks', { name: 'out', cidr: '10.250.0.0/24', egress: 'yes' }),
      400,
      /^egress must be true \(its guests reach the cluster network/,
    ],
    [
      'a volume seed that is not base64',
      () => vol(a, 'POST', '/v1/volumes', { name: 'seeded', sizeMiB: 1, seed: 'not base64!' }),
      400,
      /^seed must be base64 of at most 4096 bytes/,
    ],
    [
      'a volume seed over 4 KiB',
      () => vol(a, 'POST', '/v1/volumes', { name: 'seeded', sizeMiB: 1, seed: Buffer.alloc(4097).toString('base64') }),
      400,
      /^seed must be base64 of at most 4096 bytes/,
    ],
    [
      'a route to something that is not a CIDR',
      () => route({ destination: '192.0.2.1', nextHop: '10.240.0.20' }),
      400,
      /^destination must be an aligned IPv4 CIDR/,
    ],
    [
      "a route into the network's own range",
      () => route({ destination: '10.240.0.0/16', nextHop: '10.240.0.20' }),
      400,
      /destination 10\.240\.0\.0\/16 overlaps the network's own 10\.240\.0\.0\/24/,
    ],
    [
      'a route via a next hop off the network',
      () => route({ destination: '203.0.113.0/24', nextHop: '10.9.9.9' }),
      400,
      /nextHop 10\.9\.9\.9 is not a host address of 10\.240\.0\.0\/24/,
    ],
    [
      'a second route to the same destination',
      () => route({ destination: '192.0.2.0/24', nextHop: '10.240.0.21' }),
      409,
      /already routes 192\.0\.2\.0\/24/,
    ],
    [
      'removing a route the network does not have',
      () => net(a, 'DELETE', `/v1/networks/${network.id}/routes?destination=203.0.113.0/24`),
      404,
      /has no route to 203\.0\.113\.0\/24/,
    ],
    ['a body that is not JSON', () => net(a, 'POST', '/v1/networks', '{nope'), 400, /body is not JSON/],
    ['a body that is an array', () => net(a, 'POST', '/v1/networks', '[]'), 400, /body must be a JSON object/],
    ['a network without a name', () => net(a, 'POST', '/v1/networks', { cidr: '10.241.0.0/24' }), 400, /^name is required/],
    [
      'an unaligned CIDR',
      () => net(a, 'POST', '/v1/networks', { name: 'x', cidr: '10.241.0.1/24' }),
      400,
      /^cidr must be an aligned IPv4 network/,
    ],
    [
      'an MTU above the VXLAN limit',
      () => net(a, 'POST', '/v1/networks', { name: 'x', cidr: '10.241.0.0/24', mtu: 1500 }),
      400,
      /^mtu must be/,
    ],
    [
      'an overlapping CIDR',
      () => net(a, 'POST', '/v1/networks', { name: 'x', cidr: '10.240.0.128/25' }),
      409,
      /overlaps network n[0-9a-f]+ \(web, 10\.240\.0\.0\/24\)/,
    ],
    ['a port on an unknown network', () => net(a, 'POST', '/v1/networks/n0000000000/ports', {}), 404, /no network n0000000000/],
    [
      'a port with an address outside the network',
      () => net(a, 'POST', `/v1/networks/${network.id}/ports`, { ip: '10.9.9.9' }),
      400,
      /ip must be a host address of 10\.240\.0\.0\/24/,
    ],
    [
      'a VM on a port already bound',
      () => vmc(a, 'POST', '/v1/vms', { name: 'vm1', image: image.id, worker: 'node05', ports: [port.id] }),
      409,
      /port p[0-9a-f]+ is already bound to vm v[0-9a-f]+ on node04/,
    ],
    [
      'a VM on a worker that is not registered',
      () => vmc(a, 'POST', '/v1/vms', { name: 'vm1', image: image.id, worker: 'node07' }),
      409,
      /worker node07 is not registered with plasmavmc \(registered: node04, node05\)/,
    ],
    [
      'a volume attached twice',
      () => vmc(a, 'POST', '/v1/vms', { name: 'vm1', image: image.id, worker: 'node05', volumes: [volume.id] }),
      409,
      /volume d[0-9a-f]+ is already attached to vm v[0-9a-f]+/,
    ],
    [
      'a VM with an unknown volume',
      () => vmc(a, 'POST', '/v1/vms', { name: 'vm1', image: image.id, worker: 'node05', volumes: ['d0000000000'] }),
      404,
      /no volume d0000000000/,
    ],
    [
      'deleting an attached volume',
      () => vol(a, 'DELETE', `/v1/volumes/${volume.id}`),
      409,
      /is attached to vm v[0-9a-f]+; delete or detach the vm first/,
    ],
    [
      'a local volume on a node that is not a worker',
      () => vol(a, 'POST', '/v1/volumes', { name: 'x', sizeMiB: 8, kind: 'local', node: 'node01' }),
      409,
      /node01 has no registered coronafs agent on a worker \(workers: node04, node05\)/,
    ],
    [
      'a volume of an unknown kind',
      () => vol(a, 'POST', '/v1/volumes', { name: 'x', sizeMiB: 8, kind: 'ssd' }),
      400,
      /^kind must be "controller"/,
    ],
    [
      'a migration of a VM that is not running',
      () => vmc(a, 'POST', `/v1/vms/${vm.id}/migrate`, { worker: 'node05' }),
      409,
      /is not running \(pending\); only a running VM migrates live/,
    ],
    [
      'a migration to a worker that is not registered',
      () => vmc(a, 'POST', `/v1/vms/${vm.id}/migrate`, { worker: 'node09' }),
      409,
      /worker node09 is not registered/,
    ],
    [
      'a VM with too many vCPUs',
      () => vmc(a, 'POST', '/v1/vms', { name: 'vm1', image: image.id, worker: 'node05', vcpus: 64 }),
      400,
      /^vcpus must be an integer from 1 to 4, got 64/,
    ],
    [
      'an image from a URL that is neither file:// nor http://',
      () => vmc(a, 'POST', '/v1/images', { name: 'x', kernel: 'https://evil/k', initrd: 'file:///i' }),
      400,
      /^kernel must be a file:\/\/\/ URL on the workers, or an http:\/\/ URL of an object/,
    ],
    [
      'a migration to the worker the VM is on',
      () => vmc(a, 'POST', `/v1/vms/${vm.id}/migrate`, { worker: 'node04' }),
      409,
      /is already on node04/,
    ],
    ['deleting a network that still has ports', () => net(a, 'DELETE', `/v1/networks/${network.id}`), 409, /still has ports/],
    [
      'deleting a port that is bound',
      () => net(a, 'DELETE', `/v1/ports/${port.id}`),
      409,
      /is bound to vm v[0-9a-f]+ on node04; delete the vm first/,
    ],
  ];

  for (const [what, fn, status, msg] of refusals) {
    it(`refuse ${what} with ${status}, naming the problem, and change nothing`, async () => {
      const before = await everything(a);
      const r = await fn();
      expect(r.status).toBe(status);
      expect(r.body.error).toMatch(msg);
      expect(await everything(a)).toEqual(before);
    });
  }

  it('a VM refused half-way (its second volume is taken) holds nothing: its port and first volume are free again', async () => {
    const p2 = (await net(a, 'POST', `/v1/networks/${network.id}/ports`, { name: 'p2' })).body;
    const v2 = (await vol(a, 'POST', '/v1/volumes', { name: 'spare', sizeMiB: 8 })).body;
    const r = await vmc(a, 'POST', '/v1/vms', {
      name: 'half',
      image: image.id,
      worker: 'node05',
      ports: [p2.id],
      volumes: [v2.id, volume.id],
    });
    expect(r.status).toBe(409);
    expect(r.body.error).toMatch(/already attached/);
    expect((await net(a, 'GET', `/v1/ports/${p2.id}`)).body.binding).toBeNull();
    expect((await vol(a, 'GET', `/v1/volumes/${v2.id}`)).body.attachedTo).toBeNull();
    expect((await net(a, 'DELETE', `/v1/ports/${p2.id}`)).status).toBe(200);
    expect((await vol(a, 'DELETE', `/v1/volumes/${v2.id}`)).status).toBe(200);
  });

  it("security groups: rules are checked field by field, a port takes only its own tenant's groups, a group in use stays", async () => {
    const bad = await net(a, 'POST', '/v1/security-groups', { name: 'web', rules: [{ protocol: 'tcp', port: 80 }, { protocol: 'gre' }] });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/^rules\[1\]\.protocol must be one of tcp, udp, icmp/);
    const icmpPort = await net(a, 'POST', '/v1/security-groups', { name: 'web', rules: [{ protocol: 'icmp', port: 1 }] });
    expect(icmpPort.body.error).toMatch(/^rules\[0\]\.port must be 1-65535, and only for tcp or udp/);
    const sg = (await net(a, 'POST', '/v1/security-groups', { name: 'web', rules: [{ protocol: 'tcp', port: 80, from: '10.240.0.0/24' }] }))
      .body;
    expect(sg.rules).toEqual([{ protocol: 'tcp', port: 80, from: '10.240.0.0/24' }]);
    const other = (await net(b, 'POST', '/v1/security-groups', { name: 'theirs', rules: [] })).body;
    expect((await net(a, 'PUT', `/v1/ports/${port.id}/security-groups`, { securityGroups: [other.id] })).status).toBe(404);
    expect((await net(a, 'PUT', `/v1/ports/${port.id}/security-groups`, { securityGroups: [sg.id] })).body.securityGroups).toEqual([sg.id]);
    const inUse = await net(a, 'DELETE', `/v1/security-groups/${sg.id}`);
    expect(inUse.status).toBe(409);
    expect(inUse.body.error).toMatch(/is used by port\(s\) p[0-9a-f]+/);
    expect((await net(a, 'PUT', `/v1/ports/${port.id}/security-groups`, { securityGroups: [] })).body.securityGroups).toEqual([]);
    expect((await net(a, 'DELETE', `/v1/security-groups/${sg.id}`)).status).toBe(200);
    expect((await net(b, 'DELETE', `/v1/security-groups/${other.id}`)).status).toBe(200);
  });

  it('a service IP takes an address of its network, balances over its own ports only, holds them while it lives, and frees its address', async () => {
    const p2 = (await net(a, 'POST', `/v1/networks/${network.id}/ports`, { name: 'p2' })).body;
    const create = (body: Obj) => net(a, 'POST', `/v1/networks/${network.id}/service-ips`, body);
    const refused: [Obj, number, RegExp][] = [
      [{ name: 'web', port: 0, backends: [] }, 400, /^port must be a TCP port from 1 to 65535/],
      [{ name: 'web', port: 80 }, 400, /^backends is required/],
      [{ name: 'web', port: 80, backends: ['p0000000000'] }, 404, /no port p0000000000/],
      [{ name: 'Web!', port: 80, backends: [] }, 400, /^name must be a lowercase name/],
    ];
    for (const [body, status, msg] of refused) {
      const r = await create(body);
      expect([r.status, r.body.error]).toEqual([status, expect.stringMatching(msg)]);
    }
    const theirs = (await net(b, 'POST', '/v1/networks', { name: 'theirs', cidr: '10.240.0.0/24' })).body;
    const theirPort = (await net(b, 'POST', `/v1/networks/${theirs.id}/ports`, {})).body;
    expect((await create({ name: 'web', port: 80, backends: [theirPort.id] })).status).toBe(404);
    const sip = await create({ name: 'web', port: 80, backends: [port.id, p2.id] });
    expect(sip.status, sip.body.error).toBe(201);
    expect(sip.body).toMatchObject({
      network: network.id,
      port: 80,
      backends: [port.id, p2.id],
      ip: expect.stringMatching(/^10\.240\.0\./),
    });
    expect((await create({ name: 'web', port: 8080, backends: [] })).status).toBe(409);
    // Its address is the network's: no port can take it.
    const clash = await net(a, 'POST', `/v1/networks/${network.id}/ports`, { ip: sip.body.ip });
    expect([clash.status, clash.body.error]).toEqual([409, expect.stringMatching(/is already in use/)]);
    const held = await net(a, 'DELETE', `/v1/ports/${p2.id}`);
    expect([held.status, held.body.error]).toEqual([409, expect.stringMatching(/is a backend of service IP\(s\) s[0-9a-f]+/)]);
    expect((await net(b, 'GET', `/v1/service-ips/${sip.body.id}`)).status).toBe(404);
    expect((await net(b, 'DELETE', `/v1/service-ips/${sip.body.id}`)).status).toBe(404);
    expect((await net(b, 'GET', '/v1/service-ips')).body.serviceIps).toEqual([]);
    const put = await net(a, 'PUT', `/v1/service-ips/${sip.body.id}/backends`, { backends: [port.id] });
    expect(put.body.backends).toEqual([port.id]);
    expect((await net(a, 'DELETE', `/v1/ports/${p2.id}`)).status).toBe(200);
    expect((await net(a, 'DELETE', `/v1/service-ips/${sip.body.id}`)).status).toBe(200);
    const reused = await net(a, 'POST', `/v1/networks/${network.id}/ports`, { ip: sip.body.ip });
    expect(reused.status).toBe(201);
    expect((await net(a, 'DELETE', `/v1/ports/${reused.body.id}`)).status).toBe(200);
    await net(b, 'DELETE', `/v1/ports/${theirPort.id}`);
    expect((await net(b, 'DELETE', `/v1/networks/${theirs.id}`)).status).toBe(200);
  });

  it("tenant B neither sees nor changes tenant A's network, port, VM or volume (404: they do not exist for B)", async () => {
    const before = await everything(a);
    const probes: [string, string, string, unknown?][] = [
      ['prismnet', 'GET', `/v1/networks/${network.id}`],
      ['prismnet', 'POST', `/v1/networks/${network.id}/ports`, {}],
      ['prismnet', 'DELETE', `/v1/networks/${network.id}`],
      ['prismnet', 'GET', `/v1/ports/${port.id}`],
      ['prismnet', 'POST', `/v1/ports/${port.id}/unbind`, { vm: vm.id }],
      ['prismnet', 'DELETE', `/v1/ports/${port.id}`],
      ['plasmavmc', 'GET', `/v1/vms/${vm.id}`],
      ['plasmavmc', 'POST', `/v1/vms/${vm.id}/stop`],
      ['plasmavmc', 'DELETE', `/v1/vms/${vm.id}`],
      ['plasmavmc', 'POST', '/v1/vms', { name: 'steal', image: image.id, worker: 'node04' }],
      ['plasmavmc', 'POST', `/v1/vms/${vm.id}/migrate`, { worker: 'node05' }],
      ['coronafs', 'GET', `/v1/volumes/${volume.id}`],
      ['coronafs', 'POST', `/v1/volumes/${volume.id}/detach`, { vm: vm.id }],
      ['coronafs', 'DELETE', `/v1/volumes/${volume.id}`],
    ];
    for (const [svc, method, path, body] of probes) {
      const r = await (svc === 'prismnet' ? net : svc === 'coronafs' ? vol : vmc)(b, method, path, body);
      expect(r.status, `${svc} ${method} ${path}`).toBe(404);
    }
    expect(await everything(b)).toEqual({ networks: [], ports: [], vms: [], volumes: [] });
    expect(await everything(a)).toEqual(before);
  });

  it('deleting the VM releases its port and its volume, which then bind again; then all of it goes', async () => {
    expect((await vmc(a, 'DELETE', `/v1/vms/${vm.id}`)).body).toEqual({ deleted: vm.id, released: [port.id, volume.id] });
    expect((await vol(a, 'GET', `/v1/volumes/${volume.id}`)).body.attachedTo).toBeNull();
    expect((await net(a, 'GET', `/v1/ports/${port.id}`)).body.binding).toBeNull();
    const again = await vmc(a, 'POST', '/v1/vms', { name: 'vm2', image: image.id, worker: 'node05', ports: [port.id] });
    expect(again.status).toBe(201);
    expect((await net(a, 'GET', `/v1/ports/${port.id}`)).body.binding).toMatchObject({ worker: 'node05', vm: again.body.id });
    expect((await vmc(a, 'DELETE', `/v1/vms/${again.body.id}`)).status).toBe(200);
    expect((await net(a, 'DELETE', `/v1/ports/${port.id}`)).status).toBe(200);
    expect((await net(a, 'DELETE', `/v1/networks/${network.id}`)).status).toBe(200);
    expect((await vol(a, 'DELETE', `/v1/volumes/${volume.id}`)).status).toBe(200);
    expect(await everything(a)).toEqual({ networks: [], ports: [], vms: [], volumes: [] });
    // The freed VXLAN id and address are handed out again.
    const n2 = (await net(a, 'POST', '/v1/networks', { name: 'web', cidr: '10.240.0.0/24' })).body;
    expect(n2.vni).toBe(4096);
    expect((await net(a, 'POST', `/v1/networks/${n2.id}/ports`, {})).body.ip).toBe('10.240.0.10');
  });
});
