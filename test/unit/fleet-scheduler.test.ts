import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainfirePublisher } from '../../src/deployer/publish-chainfire.js';
import { Deployer } from '../../src/deployer/server.js';
import { DeployerStore } from '../../src/deployer/store.js';
import { ETCD, etcdArgs, freePort, LIB, until } from '../helpers/control-apis.js';

/**
 * fleet-scheduler as it ships, two of them on a real etcd with iam, placing what the deployer
 * declares (published to the same etcd): one leads; bad input is a 4xx naming the field and
 * changes nothing; placements follow heartbeat leases and drains; when the leader dies the other
 * takes over and goes on placing.
 */
const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-fleet-'));
const procs: Record<string, ResultPromise> = {};
let etcd = '';
let iam = '';
const schedulers: Record<string, string> = {};
let token = '';
const ADMIN = 'deployer-admin-token';
let deployer: Deployer;
const b64 = (s: string) => Buffer.from(s).toString('base64');

const spawn = (name: string, file: string, argv: string[], env: Record<string, string>) => {
  procs[name] = execa(file, argv, { env: { ...process.env, ...env }, reject: false, all: true, cleanup: true });
};
const etcdCall = async (p: string, body: unknown) =>
  (await fetch(`${etcd}${p}`, { method: 'POST', body: JSON.stringify(body) })).json() as Promise<Record<string, string>>;
/** A node-agent's heartbeat: its key under a lease of `ttl` seconds; returns the lease to revoke (a power cut). */
async function heartbeat(node: string, ttl = 60): Promise<string> {
  const { ID } = await etcdCall('/v3/lease/grant', { TTL: String(ttl) });
  await etcdCall('/v3/kv/put', { key: b64(`/ultracloud/fleet/nodes/${node}`), value: b64(JSON.stringify({ node })), lease: ID });
  return ID!;
}
const call = async (base: string, method: string, p: string, body?: unknown, auth = true) => {
  const r = await fetch(`${base}${p}`, {
    method,
    headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> & { error?: string } };
};
/** Declare (or remove, with no spec) a service through the deployer's admin API. */
const declare = async (name: string, spec?: unknown, auth = true) => {
  const r = await fetch(`${deployer.url}/api/v1/admin/services/${name}`, {
    method: spec === undefined ? 'DELETE' : 'PUT',
    headers: auth ? { authorization: `Bearer ${ADMIN}` } : {},
    body: spec === undefined ? undefined : JSON.stringify(spec),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> & { error?: string } };
};
const leaderUrl = async () => {
  for (const [name, url] of Object.entries(schedulers)) if ((await call(url, 'GET', '/health')).body.leading) return { name, url };
  return null;
};
/** Placements as '<svc>/<i>' -> node, once they equal `want` (the leader reconciles on watch events). */
async function placed(url: string, want: Record<string, string | null>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  let got: Record<string, string | null> = {};
  while (Date.now() < deadline) {
    const services = (await call(url, 'GET', '/v1/services')).body as unknown as {
      placements: { service: string; index: number; node: string | null }[];
    }[];
    got = Object.fromEntries(services.flatMap((s) => s.placements.map((p) => [`${p.service}/${p.index}`, p.node])));
    if (JSON.stringify(Object.entries(got).sort()) === JSON.stringify(Object.entries(want).sort())) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(got).toEqual(want);
}

beforeAll(async () => {
  const [client, peer, iamPort, s1, s2] = await Promise.all([1, 2, 3, 4, 5].map(freePort));
  etcd = `http://127.0.0.1:${client}`;
  iam = `http://127.0.0.1:${iamPort}`;
  spawn('etcd', ETCD, etcdArgs(dir, client!, peer!), {});
  await until('etcd', `${etcd}/health`);
  const common = { CHAINFIRE_ENDPOINT: etcd, CHAINFIRE_ENDPOINTS: etcd, IAM_ENDPOINTS: iam };
  spawn('iam', 'node', [`${LIB}/iam.js`], { ...common, IAM_PORT: String(iamPort), NODE_NAME: 'node01' });
  for (const [name, port] of [
    ['node01', s1],
    ['node02', s2],
  ] as const) {
    spawn(name, 'node', [`${LIB}/fleet-scheduler.js`], { ...common, FLEET_PORT: String(port), NODE_NAME: name });
    schedulers[name] = `http://127.0.0.1:${port}`;
  }
  for (const [name, url] of Object.entries({ iam, ...schedulers })) await until(name, `${url}/health`);
  const r = await fetch(`${iam}/v1/tokens`, {
    method: 'POST',
    body: JSON.stringify({ subject: 'fleet-admin' }),
    headers: { 'content-type': 'application/json' },
  });
  token = ((await r.json()) as { token: string }).token;
  const quiet = () => {};
  deployer = new Deployer({
    contract: { pools: {}, classes: {} },
    store: new DeployerStore(path.join(dir, 'deployer', 'state.json')),
    adminToken: ADMIN,
    artifacts: path.join(dir, 'deployer', 'artifacts'),
    publicUrl: (port) => `http://127.0.0.1:${port}`,
    log: { info: quiet, warn: quiet, error: quiet },
    publish: chainfirePublisher([etcd]),
  });
  await deployer.listen();
}, 60_000);

afterAll(async () => {
  await deployer?.close();
  for (const p of Object.values(procs)) p.kill('SIGKILL');
  await Promise.all(Object.values(procs));
  rmSync(dir, { recursive: true, force: true });
});

describe('fleet-scheduler (two instances, real etcd and iam)', () => {
  it('exactly one leads, and the leader key names it', async () => {
    let leader: { name: string } | null = null;
    for (let i = 0; i < 50 && !leader; i++) {
      leader = await leaderUrl();
      await new Promise((r) => setTimeout(r, 100));
    }
    const leading = await Promise.all(Object.values(schedulers).map(async (u) => (await call(u, 'GET', '/health')).body.leading));
    expect(leading.filter(Boolean)).toHaveLength(1);
    expect((await call(schedulers.node01!, 'GET', '/v1/leader')).body).toMatchObject({ node: leader!.name });
  });

  it('bad input is a 4xx naming the field or the cause, and changes nothing', async () => {
    const s = schedulers.node02!;
    const declared: [string, unknown, boolean, number, RegExp][] = [
      ['web', { replicas: 1, port: 20001 }, false, 401, /missing or wrong bearer token/],
      ['Web', { replicas: 1, port: 20001 }, true, 400, /service name: must match/],
      ['web', { replicas: 0, port: 20001 }, true, 400, /replicas: /],
      ['web', { replicas: 1, port: 80 }, true, 400, /port: /],
      ['web', { replicas: 1 }, true, 400, /port: /],
      ['web', { replicas: 1, port: 20001, image: 'x' }, true, 400, /image/],
      ['absent', undefined, true, 404, /no service "absent"/],
    ];
    for (const [name, spec, auth, status, error] of declared) {
      const r = await declare(name, spec, auth);
      expect([r.status, r.body.error], `deployer: ${name} ${JSON.stringify(spec)}`).toEqual([status, expect.stringMatching(error)]);
    }
    const scheduler: [string, string, unknown, number, RegExp][] = [
      ['PUT', '/v1/services/web', { replicas: 1, port: 20001 }, 404, /no route PUT/], // read-only: the deployer declares
      ['PUT', '/v1/nodes/node09/drain', {}, 404, /no worker node09 has sent a heartbeat/],
    ];
    for (const [method, p, body, status, error] of scheduler) {
      const r = await call(s, method, p, body);
      expect([r.status, r.body.error], `${method} ${p} ${JSON.stringify(body)}`).toEqual([status, expect.stringMatching(error)]);
    }
    expect((await declare('web', undefined)).status).toBe(404);
    expect((await call(s, 'GET', '/v1/services')).body).toEqual([]);
    expect(
      (await etcdCall('/v3/kv/range', { key: b64('/ultracloud/fleet/drain/'), range_end: b64('/ultracloud/fleet/drain0') })).count,
    ).toBeUndefined();
  });

  it('places replicas one per worker from heartbeats; a drain moves them, a lost lease fails them over, a returning worker gets its replica back', async () => {
    await heartbeat('node04');
    const node05 = await heartbeat('node05');
    const s = schedulers.node01!;
    // The pair first: placement is sticky, so what is placed first takes the emptier workers.
    expect(await declare('pair', { replicas: 2, port: 20002 })).toMatchObject({ status: 201, body: { published: true } });
    expect((await declare('single', { replicas: 1, port: 20001 })).status).toBe(201);
    expect(await declare('other', { replicas: 1, port: 20001 })).toMatchObject({
      status: 409,
      body: { error: "port 20001 is service single's" },
    });
    await placed(s, { 'pair/0': 'node04', 'pair/1': 'node05', 'single/0': 'node04' });

    expect((await call(s, 'PUT', '/v1/nodes/node04/drain', { reason: 'kernel update' })).status).toBe(200);
    await placed(s, { 'pair/0': null, 'pair/1': 'node05', 'single/0': 'node05' });
    const nodes = (await call(s, 'GET', '/v1/nodes')).body as unknown as { node: string; drained: boolean }[];
    expect(nodes.map((n) => [n.node, n.drained])).toEqual([
      ['node04', true],
      ['node05', false],
    ]);
    expect((await call(s, 'DELETE', '/v1/nodes/node04/drain')).status).toBe(200);
    await placed(s, { 'pair/0': 'node04', 'pair/1': 'node05', 'single/0': 'node05' });

    await etcdCall('/v3/lease/revoke', { ID: node05 }); // node05's heartbeat lease ends: a power cut
    await placed(s, { 'pair/0': 'node04', 'pair/1': null, 'single/0': 'node04' });
    await heartbeat('node05');
    await placed(s, { 'pair/0': 'node04', 'pair/1': 'node05', 'single/0': 'node04' });
  });

  it('a service removed from the deployer, or put into chainfire behind its back, is made right by the next publish', async () => {
    const s = schedulers.node01!;
    await etcdCall('/v3/kv/put', {
      key: b64('/ultracloud/fleet/services/stray'),
      value: b64(JSON.stringify({ name: 'stray', replicas: 1, port: 20009 })),
    });
    expect((await declare('single', undefined)).status).toBe(200);
    await placed(s, { 'pair/0': 'node04', 'pair/1': 'node05' });
    expect((await declare('single', { replicas: 1, port: 20001 })).status).toBe(201);
    await placed(s, { 'pair/0': 'node04', 'pair/1': 'node05', 'single/0': 'node04' });
  });

  it('when the leader dies, the other takes over once its lease expires and goes on placing', async () => {
    const leader = (await leaderUrl())!;
    procs[leader.name]!.kill('SIGKILL');
    await procs[leader.name];
    const other = Object.entries(schedulers).find(([n]) => n !== leader.name)![1];
    expect((await declare('late', { replicas: 1, port: 20003 })).status).toBe(201);
    await placed(other, { 'pair/0': 'node04', 'pair/1': 'node05', 'single/0': 'node04', 'late/0': 'node05' }, 30_000);
    expect((await call(other, 'GET', '/health')).body.leading).toBe(true);
  }, 40_000);
});
