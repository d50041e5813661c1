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

/** Everything tenant `token` has, to show a refused call changed nothing. */
async function everything(token: string) {
  return {
    networks: (await net(token, 'GET', '/v1/networks')).body.networks,
    ports: (await net(token, 'GET', '/v1/ports')).body.ports,
    vms: (await vmc(token, 'GET', '/v1/vms')).body.vms,
  };
}

beforeAll(async () => {
  apis = await startControlApis();
  // Two workers registered, as their agents do at boot.
  for (const w of ['node04', 'node05']) {
    await apis.put(`/ultracloud/plasmavmc/workers/${w}`, { name: w, ip: '10.100.0.21', accel: 'tcg', agentPort: 8101 });
    await apis.put(`/ultracloud/prismnet/agents/${w}`, { node: w, ip: '10.100.0.21' });
  }
  [a, b] = [await apis.token('tenant-a'), await apis.token('tenant-b')];
}, 60_000);
afterAll(async () => apis?.stop());

describe('prismnet and plasmavmc control APIs (real etcd, lab iam)', () => {
  let network: Obj;
  let port: Obj;
  let image: Obj;
  let vm: Obj;

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
    const r = await vmc(a, 'POST', '/v1/vms', { name: 'vm0', image: image.id, worker: 'node04', ports: [port.id] });
    expect(r.status, r.body.error).toBe(201);
    vm = r.body;
    expect(vm.nics[0]).toMatchObject({ port: port.id, ip: '10.240.0.10', tap: `pnt${port.id.slice(1)}` });
    expect((await net(a, 'GET', `/v1/ports/${port.id}`)).body.binding).toMatchObject({ worker: 'node04', vm: vm.id });
  });

  const refusals: [string, () => Promise<{ status: number; body: Obj }>, number, RegExp][] = [
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
      'a VM with a volume (coronafs not attachable yet)',
      () => vmc(a, 'POST', '/v1/vms', { name: 'vm1', image: image.id, worker: 'node05', volumes: ['vol1'] }),
      400,
      /^volumes must be empty/,
    ],
    [
      'a VM with too many vCPUs',
      () => vmc(a, 'POST', '/v1/vms', { name: 'vm1', image: image.id, worker: 'node05', vcpus: 64 }),
      400,
      /^vcpus must be an integer from 1 to 4, got 64/,
    ],
    [
      'an image from a URL that is not file://',
      () => vmc(a, 'POST', '/v1/images', { name: 'x', kernel: 'http://evil/k', initrd: 'file:///i' }),
      400,
      /^kernel must be a file:\/\/\/ URL/,
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

  it("tenant B neither sees nor changes tenant A's network, port or VM (404: they do not exist for B)", async () => {
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
    ];
    for (const [svc, method, path, body] of probes) {
      const r = await (svc === 'prismnet' ? net : vmc)(b, method, path, body);
      expect(r.status, `${svc} ${method} ${path}`).toBe(404);
    }
    expect(await everything(b)).toEqual({ networks: [], ports: [], vms: [] });
    expect(await everything(a)).toEqual(before);
  });

  it('deleting the VM releases its port, which then binds again; then all of it goes', async () => {
    expect((await vmc(a, 'DELETE', `/v1/vms/${vm.id}`)).body).toEqual({ deleted: vm.id, released: [port.id] });
    expect((await net(a, 'GET', `/v1/ports/${port.id}`)).body.binding).toBeNull();
    const again = await vmc(a, 'POST', '/v1/vms', { name: 'vm2', image: image.id, worker: 'node05', ports: [port.id] });
    expect(again.status).toBe(201);
    expect((await net(a, 'GET', `/v1/ports/${port.id}`)).body.binding).toMatchObject({ worker: 'node05', vm: again.body.id });
    expect((await vmc(a, 'DELETE', `/v1/vms/${again.body.id}`)).status).toBe(200);
    expect((await net(a, 'DELETE', `/v1/ports/${port.id}`)).status).toBe(200);
    expect((await net(a, 'DELETE', `/v1/networks/${network.id}`)).status).toBe(200);
    expect(await everything(a)).toEqual({ networks: [], ports: [], vms: [] });
    // The freed VXLAN id and address are handed out again.
    const n2 = (await net(a, 'POST', '/v1/networks', { name: 'web', cidr: '10.240.0.0/24' })).body;
    expect(n2.vni).toBe(4096);
    expect((await net(a, 'POST', `/v1/networks/${n2.id}/ports`, {})).body.ip).toBe('10.240.0.10');
  });
});
