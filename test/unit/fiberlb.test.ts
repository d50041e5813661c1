import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlApis, freePort, LIB, startControlApis } from '../helpers/control-apis.js';
import { waitFor } from '../helpers/procs.js';

/**
 * fiberlb, the files the lab image ships: its API against a real etcd and the lab's iam (strict
 * input: the field named, nothing stored), and its agent's haproxy config and runtime API driving
 * a real haproxy on this host (a drain moves every request to the other backend).
 */
// biome-ignore lint/suspicious/noExplicitAny: JSON bodies of several shapes
type Obj = Record<string, any>;
const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-fiberlb-'));
process.env.FIBERLB_ADMIN_SOCKET = path.join(dir, 'admin.sock');
const require = createRequire(import.meta.url);
const { render } = require(`${LIB}/fiberlb-agent.js`) as { render: (lbs: Obj[], pools: Obj[], backends: Obj[]) => string };
const runtime = require(`${LIB}/haproxy-runtime.js`) as {
  adminStates: () => Promise<Record<string, string>>;
  setState: (server: string, state: string) => Promise<void>;
};

let apis: ControlApis;
let api: string;
let a: string;
let b: string;
const procs: ResultPromise[] = [];
const servers: http.Server[] = [];

async function call(token: string, method: string, p: string, body?: unknown) {
  const r = await fetch(`${api}${p}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: typeof body === 'string' ? body : body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Obj };
}

beforeAll(async () => {
  apis = await startControlApis();
  [a, b] = [await apis.token('tenant-a'), await apis.token('tenant-b')];
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  procs.push(
    execa('node', [`${LIB}/fiberlb-api.js`], {
      env: {
        ...process.env,
        FIBERLB_PORT: String(port),
        CHAINFIRE_ENDPOINTS: apis.etcd,
        IAM_ENDPOINTS: apis.iam,
        CLUSTER_IP: '10.100.0.31',
      },
      reject: false,
    }),
  );
  // Without a token it answers 401: up. (Its /health needs haproxy, which this API-only process lacks.)
  await waitFor(async () => (await fetch(`${api}/v1/loadbalancers`).catch(() => null))?.status === 401, 20_000, 'the fiberlb API');
}, 60_000);

afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs);
  for (const s of servers) s.close();
  await apis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('fiberlb API (real etcd, lab iam)', () => {
  it('refuses bad input naming the field, and stores nothing', async () => {
    const lb = await call(a, 'POST', '/v1/loadbalancers', { name: 'web', port: 10080 });
    expect(lb.status).toBe(201);
    const pool = await call(a, 'POST', '/v1/pools', { name: 'web', loadbalancer: lb.body.id, healthPath: '/health' });
    expect(pool.status).toBe(201);
    expect((await call(a, 'POST', `/v1/pools/${pool.body.id}/backends`, { name: 'one', address: '10.0.0.1', port: 80 })).status).toBe(201);
    const everything = async () => ({
      lbs: (await call(a, 'GET', '/v1/loadbalancers')).body,
      pools: (await call(a, 'GET', '/v1/pools')).body,
      pool: (await call(a, 'GET', `/v1/pools/${pool.body.id}`)).body.backends,
    });
    const before = await everything();
    const cases: [string, string, unknown, number, RegExp][] = [
      ['POST', '/v1/loadbalancers', '{"name":', 400, /not JSON/],
      ['POST', '/v1/loadbalancers', { name: 'x', port: 10081, color: 'red' }, 400, /unknown field "color"/],
      ['POST', '/v1/loadbalancers', { name: 'x', port: 80 }, 400, /port must be a frontend port from 10000/],
      ['POST', '/v1/loadbalancers', { name: 'web', port: 10082 }, 409, /a load balancer named web exists/],
      ['POST', '/v1/loadbalancers', { name: 'other', port: 10080 }, 409, /frontend port 10080 is taken/],
      ['POST', '/v1/pools', { name: 'p2', loadbalancer: 'lnope' }, 404, /no loadbalancer lnope/],
      ['POST', '/v1/pools', { name: 'p2', loadbalancer: lb.body.id }, 409, /already has its pool/],
      [
        'POST',
        '/v1/pools/qnope/backends',
        { name: 'two', address: '10.0.0.2', port: 80 },
        404,
        /no pool qnope: a backend needs an existing pool/,
      ],
      [
        'POST',
        `/v1/pools/${pool.body.id}/backends`,
        { name: 'one', address: '10.0.0.2', port: 80 },
        409,
        /already has a backend named one/,
      ],
      [
        'POST',
        `/v1/pools/${pool.body.id}/backends`,
        { name: 'two', address: '10.0.0.256', port: 80 },
        400,
        /address must be an IPv4 address/,
      ],
      ['POST', `/v1/pools/${pool.body.id}/backends`, { name: 'two', address: '10.0.0.2', port: 80, tls: true }, 400, /unknown field "tls"/],
      ['PUT', `/v1/backends/${before.pool[0].id}/state`, { state: 'off' }, 400, /state must be ready, drain, maint/],
      ['DELETE', `/v1/pools/${pool.body.id}`, undefined, 409, /still has backends/],
      ['DELETE', `/v1/loadbalancers/${lb.body.id}`, undefined, 409, /still has pools/],
    ];
    for (const [method, p, body, status, error] of cases) {
      const r = await call(a, method, p, body);
      expect([r.status, r.body.error], `${method} ${p} ${JSON.stringify(body)}`).toEqual([status, expect.stringMatching(error)]);
    }
    expect(await everything()).toEqual(before);
  });

  it("keeps tenants apart: another tenant's load balancer, pool and backends are 404", async () => {
    const [lb] = (await call(a, 'GET', '/v1/loadbalancers')).body.loadbalancers as Obj[];
    const [pool] = (await call(a, 'GET', '/v1/pools')).body.pools as Obj[];
    expect((await call(b, 'GET', '/v1/loadbalancers')).body.loadbalancers).toEqual([]);
    for (const [m, p] of [
      ['GET', `/v1/loadbalancers/${lb!.id}`],
      ['DELETE', `/v1/loadbalancers/${lb!.id}`],
      ['GET', `/v1/pools/${pool!.id}`],
    ] as const)
      expect((await call(b, m, p)).status, `${m} ${p}`).toBe(404);
    expect((await call(b, 'POST', `/v1/pools/${pool!.id}/backends`, { name: 'evil', address: '10.0.0.9', port: 80 })).status).toBe(404);
  });
});

describe("fiberlb-agent's haproxy (real haproxy on this host)", () => {
  it('renders a config haproxy accepts; a drain through the runtime API moves every request to the other backend', async () => {
    const backendPorts: number[] = [];
    for (const name of ['one', 'two']) {
      const s = http.createServer((_q, r) => r.end(name)).listen(0, '127.0.0.1');
      await new Promise((ok) => s.on('listening', ok));
      servers.push(s);
      backendPorts.push((s.address() as { port: number }).port);
    }
    const front = await freePort();
    const lbs = [{ id: 'l1', port: front, mode: 'http' }];
    const pools = [{ id: 'q1', loadbalancer: 'l1', algorithm: 'roundrobin', healthPath: '' }];
    const backends = ['one', 'two'].map((name, i) => ({
      pool: 'q1',
      name,
      address: '127.0.0.1',
      port: backendPorts[i],
      weight: 1,
      state: 'ready',
    }));
    const cfg = path.join(dir, 'haproxy.cfg');
    // The agent's own loopback frontend would clash with another run: move it for the test.
    writeFileSync(cfg, render(lbs, pools, backends).replace(/bind 127\.0\.0\.1:8151/, `bind 127.0.0.1:${await freePort()}`));
    const check = await execa('haproxy', ['-c', '-f', cfg], { reject: false });
    expect(check.exitCode, check.stderr).toBe(0);
    procs.push(execa('haproxy', ['-W', '-db', '-f', cfg], { reject: false }));
    await waitFor(
      async () => (await runtime.adminStates().catch((): Record<string, string> => ({})))['pool_q1/two'] === 'ready',
      20_000,
      'haproxy up',
    );
    const round = async () => {
      const seen: string[] = [];
      for (let i = 0; i < 6; i++) seen.push(await (await fetch(`http://127.0.0.1:${front}/`)).text());
      return seen;
    };
    expect(new Set(await round())).toEqual(new Set(['one', 'two']));
    await runtime.setState('pool_q1/two', 'drain');
    expect((await runtime.adminStates())['pool_q1/two']).toBe('drain');
    expect(new Set(await round())).toEqual(new Set(['one']));
    await runtime.setState('pool_q1/two', 'ready');
    expect(new Set(await round())).toEqual(new Set(['one', 'two']));
  }, 60_000);
});
