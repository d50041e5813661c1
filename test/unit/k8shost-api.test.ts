import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlApis, startControlApis } from '../helpers/control-apis.js';

/**
 * k8shost, the file the lab image ships, on this host against a real etcd and the lab's iam:
 * Kubernetes-shaped pods and services, strict input (the field named, nothing stored), tenants
 * that cannot see each other, and watches that are bounded snapshot streams.
 */
// biome-ignore lint/suspicious/noExplicitAny: JSON bodies of several shapes
type Obj = Record<string, any>;
let apis: ControlApis;
let a: string;
let b: string;

async function k8s(token: string, method: string, path: string, body?: unknown) {
  const r = await fetch(`${apis.k8shost}${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: typeof body === 'string' ? body : body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Obj };
}
const pod = (name: string, extra: Obj = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels: { app: 'web' } },
  spec: { containers: [{ name: 'web', image: 'nginx:1.25', ports: [{ containerPort: 80 }] }] },
  ...extra,
});
const names = async (token: string, plural = 'pods', ns = 'default') =>
  ((await k8s(token, 'GET', `/api/v1/namespaces/${ns}/${plural}`)).body.items as Obj[]).map((p) => p.metadata.name);

/** Read a watch to its end (or the client's deadline): its events and how long it lasted. */
async function watchAll(token: string, query: string, during?: () => Promise<void>, deadlineMs = 20_000) {
  const t0 = Date.now();
  const r = await fetch(`${apis.k8shost}/api/v1/namespaces/default/pods?watch=1&${query}`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(deadlineMs),
  });
  expect(r.status).toBe(200);
  const events: Obj[] = [];
  let buf = '';
  const decoder = new TextDecoder();
  let started = false;
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      events.push(JSON.parse(buf.slice(0, nl)));
      buf = buf.slice(nl + 1);
    }
    if (!started && during) {
      started = true;
      await during();
    }
  }
  return { events, ms: Date.now() - t0 };
}

beforeAll(async () => {
  apis = await startControlApis();
  [a, b] = [await apis.token('tenant-a'), await apis.token('tenant-b')];
}, 60_000);
afterAll(async () => apis?.stop());

describe('k8shost API (real etcd, lab iam)', () => {
  it('creates, reads, lists and deletes pods and services in Kubernetes shape', async () => {
    const created = await k8s(a, 'POST', '/api/v1/namespaces/default/pods', pod('web-1'));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ kind: 'Pod', metadata: { name: 'web-1', namespace: 'default' }, status: { phase: 'Pending' } });
    expect(created.body.metadata.uid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-/);
    expect(Number(created.body.metadata.resourceVersion)).toBeGreaterThan(0);
    const got = await k8s(a, 'GET', '/api/v1/namespaces/default/pods/web-1');
    expect(got.body.metadata.uid).toBe(created.body.metadata.uid);
    const list = await k8s(a, 'GET', '/api/v1/namespaces/default/pods');
    expect(list.body.kind).toBe('PodList');
    expect(list.body.items.map((p: Obj) => p.metadata.name)).toEqual(['web-1']);

    const svc = await k8s(a, 'POST', '/api/v1/namespaces/default/services', {
      metadata: { name: 'web' },
      spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
    });
    expect(svc.status).toBe(201);
    expect(svc.body.kind).toBe('Service');
    expect((await k8s(a, 'DELETE', '/api/v1/namespaces/default/services/web')).status).toBe(200);
    expect((await k8s(a, 'GET', '/api/v1/namespaces/default/services/web')).status).toBe(404);
  });

  it('refuses bad input with a 4xx naming the field, and stores nothing', async () => {
    const before = await names(a);
    const cases: [unknown, number, RegExp][] = [
      ['{"metadata":', 400, /not JSON/],
      [pod('x-1', { extra: 1 }), 400, /unknown field "extra"/],
      [{ ...pod('x-2'), spec: { containers: [{ name: 'web', image: 'nginx', cpu: 2 }] } }, 400, /unknown field "spec.containers\[0\].cpu"/],
      [{ ...pod('x-3'), metadata: { name: 'Bad_Name' } }, 422, /metadata.name: Invalid value/],
      [{ ...pod('x-4'), spec: { containers: [] } }, 422, /spec.containers: Invalid value/],
      [{ ...pod('x-5'), spec: { containers: [{ name: 'web', image: 'nginx', ports: [{ containerPort: 70000 }] }] } }, 422, /containerPort/],
      [{ metadata: { name: 'x-6' } }, 422, /spec: Invalid value: Required value/],
      [{ ...pod('x-7'), kind: 'Service' }, 422, /kind: Invalid value/],
      [{ ...pod('x-8'), metadata: { name: 'x-8', namespace: 'other' } }, 400, /does not match the namespace/],
      [pod('web-1'), 409, /already exists/],
    ];
    for (const [body, status, message] of cases) {
      const r = await k8s(a, 'POST', '/api/v1/namespaces/default/pods', body);
      expect([r.status, r.body.kind], JSON.stringify(body)).toEqual([status, 'Status']);
      expect(r.body.message).toMatch(message);
    }
    expect((await k8s(a, 'GET', '/api/v1/namespaces/Bad/pods')).status).toBe(400);
    expect((await k8s(`${a}x`, 'GET', '/api/v1/namespaces/default/pods')).body).toMatchObject({ kind: 'Status', code: 401 });
    expect((await k8s(a, 'GET', '/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=0')).body.message).toMatch(/timeoutSeconds/);
    expect(await names(a)).toEqual(before);
  });

  it("keeps tenants apart: another tenant's namespace of the same name is its own", async () => {
    expect(await names(b)).toEqual([]);
    expect((await k8s(b, 'GET', '/api/v1/namespaces/default/pods/web-1')).status).toBe(404);
    expect((await k8s(b, 'DELETE', '/api/v1/namespaces/default/pods/web-1')).status).toBe(404);
    expect((await k8s(b, 'POST', '/api/v1/namespaces/default/pods', pod('web-1'))).status).toBe(201);
    expect((await k8s(b, 'DELETE', '/api/v1/namespaces/default/pods/web-1')).status).toBe(200);
    expect(await names(a)).toEqual(['web-1']);
  });

  it('watches as a bounded snapshot stream: current pods as ADDED, then changes, then it ends by itself', async () => {
    const { events, ms } = await watchAll(a, 'timeoutSeconds=3', async () => {
      await k8s(a, 'POST', '/api/v1/namespaces/default/pods', pod('web-2'));
      await k8s(a, 'DELETE', '/api/v1/namespaces/default/pods/web-2');
    });
    expect(events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(['ADDED web-1', 'ADDED web-2', 'DELETED web-2']);
    expect(ms).toBeGreaterThanOrEqual(2900);
    expect(ms).toBeLessThan(8000);
    // From a resource version: only what changed after it.
    const rv = events[1]!.object.metadata.resourceVersion;
    const after = await watchAll(a, `timeoutSeconds=1&resourceVersion=${rv}`);
    expect(after.events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(['DELETED web-2']);
    // Another tenant's watch sees none of it.
    expect((await watchAll(b, 'timeoutSeconds=1')).events).toEqual([]);
  }, 30_000);
});
