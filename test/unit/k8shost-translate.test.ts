import { Resolver } from 'node:dns/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlApis, startControlApis } from '../helpers/control-apis.js';

/**
 * k8shost's translation, the files the lab image ships, against a real etcd, the lab's prismnet
 * and fiberlb APIs and a real PowerDNS: a pod on a tenant network becomes a prismnet port, a
 * service a fiberlb load balancer with the pod as backend and a DNS name; deletes remove them;
 * a translation that fails part-way leaves nothing behind.
 */
// biome-ignore lint/suspicious/noExplicitAny: JSON bodies of several shapes
type Obj = Record<string, any>;
let apis: ControlApis;
let a: string;

async function call(base: string, token: string, method: string, path: string, body?: unknown) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Obj };
}
const k8s = (method: string, path: string, body?: unknown) => call(apis.k8shost, a, method, `/api/v1/namespaces/shop${path}`, body);
const lbs = async () => (await call(apis.fiberlb, a, 'GET', '/v1/loadbalancers')).body.loadbalancers as Obj[];
const ports = async () => (await call(apis.prismnet, a, 'GET', '/v1/ports')).body.ports as Obj[];
const pod = (name: string, network: string) => ({
  metadata: { name, labels: { app: 'shop' }, annotations: { 'prismnet.ultracloud.io/network': network } },
  spec: { containers: [{ name: 'web', image: 'nginx:1.25' }] },
});
const service = (name: string, ports = [{ port: 80, targetPort: 8080 }]) => ({
  metadata: { name },
  spec: { selector: { app: 'shop' }, ports },
});
/** A real DNS query to PowerDNS: the A records of `name`, or the resolver's error code. */
async function resolve(name: string): Promise<string[] | string> {
  const r = new Resolver({ timeout: 2000, tries: 1 });
  r.setServers([`127.0.0.1:${apis.flashdns.dnsPort}`]);
  return r.resolve4(name).catch((e: NodeJS.ErrnoException) => e.code ?? String(e));
}

beforeAll(async () => {
  apis = await startControlApis();
  a = await apis.token('tenant-a');
  await apis.put('/ultracloud/prismnet/agents/node04', { node: 'node04', ip: '10.100.0.14' }); // a network needs a worker for its DHCP
}, 60_000);
afterAll(async () => apis?.stop());

describe('k8shost translation (real etcd, prismnet, fiberlb, PowerDNS)', () => {
  let net: Obj;
  it('a pod on a tenant network gets a prismnet port, a service a load balancer, its backends and a DNS name', async () => {
    const made = await call(apis.prismnet, a, 'POST', '/v1/networks', { name: 'shop', cidr: '10.61.0.0/24' });
    expect(made.status).toBe(201);
    net = made.body;
    const p = await k8s('POST', '/pods', pod('shop-1', net.id));
    expect(p.status).toBe(201);
    const port = (await ports()).find((x) => x.id === p.body.metadata.annotations['prismnet.ultracloud.io/port']);
    expect(port).toMatchObject({ network: net.id, ip: p.body.status.podIP });
    expect(p.body.status.podIP).toMatch(/^10\.61\.0\./);

    const s = await k8s('POST', '/services', service('shop'));
    expect(s.status).toBe(201);
    const ann = s.body.metadata.annotations;
    const lb = (await lbs()).find((x) => x.id === ann['fiberlb.ultracloud.io/loadbalancer']);
    expect(lb).toMatchObject({ mode: 'tcp', port: s.body.status.loadBalancer.ingress[0].ports[0].port });
    const pool = (await call(apis.fiberlb, a, 'GET', `/v1/pools/${ann['fiberlb.ultracloud.io/pool']}`)).body;
    expect(pool.backends.map((b: Obj) => `${b.address}:${b.port}`)).toEqual([`${p.body.status.podIP}:8080`]);
    expect(ann['flashdns.ultracloud.io/name']).toBe('shop.shop.tenant-a.svc.ultracloud.lab.');
    expect(await resolve('shop.shop.tenant-a.svc.ultracloud.lab')).toEqual([lb!.address]);

    // A pod made after the service joins its pool.
    const p2 = await k8s('POST', '/pods', pod('shop-2', net.id));
    const after = (await call(apis.fiberlb, a, 'GET', `/v1/pools/${ann['fiberlb.ultracloud.io/pool']}`)).body;
    expect(after.backends.map((b: Obj) => b.address).sort()).toEqual([p.body.status.podIP, p2.body.status.podIP].sort());
  });

  it('deleting a pod removes its backend and port; deleting the service its load balancer and DNS name', async () => {
    const before = (await ports()).length;
    expect((await k8s('DELETE', '/pods/shop-2')).status).toBe(200);
    expect((await ports()).length).toBe(before - 1);
    const s = (await k8s('GET', '/services/shop')).body;
    const pool = (await call(apis.fiberlb, a, 'GET', `/v1/pools/${s.metadata.annotations['fiberlb.ultracloud.io/pool']}`)).body;
    expect(pool.backends).toHaveLength(1);

    expect((await k8s('DELETE', '/services/shop')).status).toBe(200);
    expect(await lbs()).toEqual([]);
    expect(await resolve('shop.shop.tenant-a.svc.ultracloud.lab')).toBe('ENOTFOUND');
    expect((await k8s('DELETE', '/pods/shop-1')).status).toBe(200);
    expect(await ports()).toEqual([]);
  });

  it('refuses what it cannot translate with the field named, and stores nothing', async () => {
    const bad = await k8s('POST', '/pods', pod('shop-3', 'nonet'));
    expect(bad.status).toBe(422);
    expect(bad.body.details.causes[0].field).toBe('metadata.annotations.prismnet.ultracloud.io/network');
    const two = await k8s(
      'POST',
      '/services',
      service('two', [
        { port: 80, targetPort: 8080 },
        { port: 443, targetPort: 8443 },
      ]),
    );
    expect(two.status).toBe(422);
    expect(two.body.details.causes[0].field).toBe('spec.ports');
    expect((await k8s('GET', '/pods')).body.items).toEqual([]);
    expect((await k8s('GET', '/services')).body.items).toEqual([]);
  });

  it('a translation that fails part-way (flashdns refuses) undoes what it made and names who refused', async () => {
    await apis.put('/ultracloud/flashdns/api', { url: apis.flashdns.api, key: 'wrong-key' });
    try {
      const r = await k8s('POST', '/services', service('shop'));
      expect(r.status).toBe(502);
      expect(r.body.message).toMatch(/^flashdns refused GET \/zones\/svc\.ultracloud\.lab\.: 401/);
      expect(await lbs()).toEqual([]);
      expect((await call(apis.fiberlb, a, 'GET', '/v1/pools')).body.pools).toEqual([]);
      expect((await k8s('GET', '/services')).body.items).toEqual([]);
    } finally {
      await apis.put('/ultracloud/flashdns/api', { url: apis.flashdns.api, key: apis.flashdns.key });
    }
  });
});
