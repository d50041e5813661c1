import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlApis, freePort, LIB, startControlApis, until } from '../helpers/control-apis.js';

/**
 * creditservice, the file the lab image ships, against a real etcd and the lab's iam: wallet
 * and admission flows, refusals that name the field and change nothing, and state that outlives
 * the process (it is in chainfire, not in memory).
 */
// biome-ignore lint/suspicious/noExplicitAny: JSON bodies of several shapes
type Obj = Record<string, any>;
let apis: ControlApis;
let token: string;

async function call(base: string, method: string, path: string, body?: unknown, auth = true) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Obj };
}
const credit = (method: string, path: string, body?: unknown, auth = true) => call(apis.creditservice, method, path, body, auth);

beforeAll(async () => {
  apis = await startControlApis();
  token = await apis.token('operator');
}, 60_000);
afterAll(async () => apis?.stop());

describe('creditservice (real etcd, lab iam)', () => {
  it('reserves against the quota, pays from the wallet on commit, frees quota on release', async () => {
    expect((await credit('POST', '/v1/wallets/acme/credit', { amount: 50 })).body.balance).toBe(50);
    const held = await credit('POST', '/v1/reservations', { tenant: 'acme', amount: 30 });
    expect(held.status).toBe(201);
    expect(held.body.available).toBe(70);
    const over = await credit('POST', '/v1/reservations', { tenant: 'acme', amount: 71 });
    expect([over.status, over.body.error]).toEqual([409, expect.stringMatching(/quota exceeded: acme holds 30 of 100/)]);

    const committed = await credit('POST', `/v1/reservations/${held.body.reservation.id}/commit`);
    expect(committed.body.account).toMatchObject({ reserved: 0, balance: 20 });
    expect((await credit('POST', `/v1/reservations/${held.body.reservation.id}/commit`)).status).toBe(409);

    const big = await credit('POST', '/v1/reservations', { tenant: 'acme', amount: 25 });
    const broke = await credit('POST', `/v1/reservations/${big.body.reservation.id}/commit`);
    expect([broke.status, broke.body.error]).toEqual([
      409,
      expect.stringMatching(/insufficient funds: .* costs 25, the wallet of acme holds 20/),
    ]);
    expect((await credit('DELETE', `/v1/reservations/${big.body.reservation.id}`)).body.account).toMatchObject({
      reserved: 0,
      balance: 20,
    });
    expect((await credit('POST', '/v1/wallets/acme/charge', { amount: 21 })).status).toBe(409);
    expect((await credit('POST', '/v1/wallets/acme/charge', { amount: 5 })).body.balance).toBe(15);
  });

  it('admits a workload only within quota and funds, and says why not', async () => {
    expect((await credit('POST', '/v1/admission', { tenant: 'acme', amount: 10, cost: 15 })).body).toMatchObject({
      admitted: true,
      reasons: [],
    });
    const no = await credit('POST', '/v1/admission', { tenant: 'acme', amount: 101, cost: 16 });
    expect(no.body.admitted).toBe(false);
    expect(no.body.reasons).toEqual([expect.stringMatching(/^quota: /), expect.stringMatching(/^funds: costs 16, the wallet holds 15/)]);
  });

  it('shows every account as Prometheus gauges (what nightlight scrapes)', async () => {
    const text = await (await fetch(`${apis.creditservice}/metrics`)).text();
    expect(text).toContain('# TYPE creditservice_wallet_balance gauge\ncreditservice_wallet_balance{tenant="acme"} 15\n');
    expect(text).toContain('creditservice_quota_reserved{tenant="acme"} 0\n');
    expect(text).toContain('creditservice_quota_limit{tenant="acme"} 100\n');
  });

  it('refuses bad input naming the field, and a change without a token; nothing changes', async () => {
    const before = (await credit('GET', '/v1/quotas/acme')).body;
    const cases: [string, string, unknown, number, RegExp][] = [
      ['POST', '/v1/wallets/acme/credit', { amount: -5 }, 400, /amount must be a whole number/],
      ['POST', '/v1/wallets/acme/credit', { amount: '5' }, 400, /amount must be/],
      ['POST', '/v1/reservations', { tenant: 'Bad Name', amount: 1 }, 400, /tenant must be a lowercase name/],
      ['POST', '/v1/reservations', { tenant: 'acme' }, 400, /amount is required/],
      ['PUT', '/v1/quotas/acme', { quota: 1.5 }, 400, /quota must be a whole number/],
      ['POST', '/v1/admission', { tenant: 'acme', amount: 1, cost: -1 }, 400, /cost must be/],
      ['POST', '/v1/reservations/rnope/commit', undefined, 404, /no reservation rnope/],
    ];
    for (const [method, path, body, status, error] of cases) {
      const r = await credit(method, path, body);
      expect([r.status, r.body.error], `${method} ${path} ${JSON.stringify(body)}`).toEqual([status, expect.stringMatching(error)]);
    }
    expect((await credit('POST', '/v1/wallets/acme/credit', { amount: 5 }, false)).status).toBe(401);
    expect((await credit('GET', '/v1/quotas/acme')).body).toEqual(before);
    expect((await credit('GET', '/v1/wallets/acme')).body.balance).toBe(15);
  });

  it('keeps its state in chainfire: another process reads the same wallet and quota', async () => {
    const port = await freePort();
    const other = execa('node', [`${LIB}/creditservice.js`], {
      env: { ...process.env, CREDIT_PORT: String(port), CHAINFIRE_ENDPOINTS: apis.etcd, IAM_ENDPOINTS: apis.iam },
      reject: false,
    });
    try {
      const base = `http://127.0.0.1:${port}`;
      await until('a second creditservice', `${base}/health`);
      expect((await call(base, 'GET', '/v1/wallets/acme')).body.balance).toBe(15);
      expect((await call(base, 'GET', '/v1/quotas/acme')).body).toMatchObject({ quota: 100, reserved: 0 });
    } finally {
      other.kill('SIGKILL');
      await other;
    }
  });
});
