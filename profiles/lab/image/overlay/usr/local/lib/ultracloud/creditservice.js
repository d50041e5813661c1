// creditservice (lab): per tenant a quota (units that may be reserved at once) and a wallet
// (credits); reservations hold quota until committed (the wallet pays for them) or released; an
// admission check says whether a workload of a size and a cost would be let in, and why not.
// State in chainfire; every change carries an iam bearer token.
'use strict';
const { serve, fail, field } = require('./http-json.js');
const { guarded, IAM } = require('./iam-auth.js');
const { chainfire } = require('./chainfire.js');
const { isName, newId } = require('./tenant-store.js');

const PORT = Number(process.env.CREDIT_PORT || 8090);
const DEFAULT_QUOTA = Number(process.env.CREDIT_DEFAULT_QUOTA || 100);
const cf = chainfire();
const K = '/ultracloud/creditservice';

const amountOf = (body, name = 'amount') => field(body, name, (v) => Number.isInteger(v) && v > 0 && v <= 1e9, 'a whole number from 1 to 1e9');
const tenantOf = (v, where = 'tenant') => {
  if (!isName(v)) throw fail(400, `${where} must be a lowercase name of up to 32 characters, got ${JSON.stringify(v)}`);
  return v;
};

async function account(tenant) {
  const got = await cf.get(`${K}/accounts/${tenant}`);
  return got ? { ...got.value, rev: got.modRevision } : { tenant, quota: DEFAULT_QUOTA, reserved: 0, balance: 0, rev: null };
}

/** Change a tenant's account only if nobody changed it meanwhile (retried): `change` returns the new account or throws. */
async function updateAccount(tenant, change) {
  for (let i = 0; i < 20; i++) {
    const { rev, ...now } = await account(tenant);
    const next = change(now);
    const key = `${K}/accounts/${tenant}`;
    if (rev === null ? await cf.create(key, next) : await cf.update(key, next, rev)) return next;
  }
  throw fail(409, `the account of ${tenant} kept changing; retry`);
}

const view = (a) => ({ tenant: a.tenant, quota: a.quota, reserved: a.reserved, available: a.quota - a.reserved, balance: a.balance });

/** Settle a held reservation: `commit` charges the wallet its amount; either way its quota is freed. */
async function settle(id, how, by) {
  const got = await cf.get(`${K}/reservations/${id}`);
  if (!got) throw fail(404, `no reservation ${id}`);
  const r = got.value;
  if (r.state !== 'held') throw fail(409, `reservation ${id} is already ${r.state}`);
  const acct = await updateAccount(r.tenant, (a) => {
    if (how === 'commit' && a.balance < r.amount) throw fail(409, `insufficient funds: reservation ${id} costs ${r.amount}, the wallet of ${r.tenant} holds ${a.balance}`);
    return { ...a, reserved: a.reserved - r.amount, balance: how === 'commit' ? a.balance - r.amount : a.balance };
  });
  const settled = { ...r, state: how === 'commit' ? 'committed' : 'released', settledBy: by, settledAt: new Date().toISOString() };
  await cf.put(`${K}/reservations/${id}`, settled);
  return { reservation: settled, account: view(acct) };
}

/** Every account as Prometheus gauges, which nightlight scrapes: a tenant's spending is a metric there. */
async function metrics() {
  const accounts = (await cf.list(`${K}/accounts/`, { serializable: true })).map((x) => x.value);
  const gauges = { creditservice_wallet_balance: 'balance', creditservice_quota_reserved: 'reserved', creditservice_quota_limit: 'quota' };
  const lines = [];
  for (const [metric, f] of Object.entries(gauges)) {
    lines.push(`# TYPE ${metric} gauge`);
    for (const a of accounts) lines.push(`${metric}{tenant="${a.tenant}"} ${a[f]}`);
  }
  return `${lines.join('\n')}\n`;
}

serve('creditservice', PORT, {
  'GET /health': async () => [200, { status: 'ok', service: 'creditservice', iam: IAM }],
  'GET /metrics': async (_r, _p, _b, _u, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(await metrics());
  },
  'GET /v1/quotas/:tenant': async (_r, p) => [200, view(await account(tenantOf(p.tenant)))],
  'PUT /v1/quotas/:tenant': guarded(async (_r, p, body) => {
    const quota = field(body, 'quota', (v) => Number.isInteger(v) && v >= 0 && v <= 1e9, 'a whole number from 0 to 1e9');
    const a = await updateAccount(tenantOf(p.tenant), (x) => {
      if (quota < x.reserved) throw fail(409, `quota ${quota} is below what ${x.tenant} holds reserved (${x.reserved})`);
      return { ...x, quota };
    });
    return [200, view(a)];
  }),
  'GET /v1/wallets/:tenant': async (_r, p) => {
    const a = await account(tenantOf(p.tenant));
    return [200, { tenant: a.tenant, balance: a.balance }];
  },
  'POST /v1/wallets/:tenant/credit': guarded(async (_r, p, body) => {
    const amount = amountOf(body);
    const a = await updateAccount(tenantOf(p.tenant), (x) => ({ ...x, balance: x.balance + amount }));
    return [200, { tenant: a.tenant, balance: a.balance }];
  }),
  'POST /v1/wallets/:tenant/charge': guarded(async (_r, p, body) => {
    const amount = amountOf(body);
    const a = await updateAccount(tenantOf(p.tenant), (x) => {
      if (x.balance < amount) throw fail(409, `insufficient funds: charging ${amount}, the wallet of ${x.tenant} holds ${x.balance}`);
      return { ...x, balance: x.balance - amount };
    });
    return [200, { tenant: a.tenant, balance: a.balance }];
  }),
  'POST /v1/reservations': guarded(async (_r, _p, body, _u, { claims }) => {
    const tenant = tenantOf(body.tenant, 'tenant');
    const amount = amountOf(body);
    const a = await updateAccount(tenant, (x) => {
      if (x.reserved + amount > x.quota) throw Object.assign(fail(409, `quota exceeded: ${tenant} holds ${x.reserved} of ${x.quota}, asked for ${amount}`), { quota: x.quota, reserved: x.reserved });
      return { ...x, reserved: x.reserved + amount };
    });
    const reservation = { id: newId('r'), tenant, amount, state: 'held', by: claims.sub, createdAt: new Date().toISOString() };
    await cf.put(`${K}/reservations/${reservation.id}`, reservation);
    return [201, { reservation, available: a.quota - a.reserved }];
  }),
  'GET /v1/reservations/:id': async (_r, p) => {
    const got = await cf.get(`${K}/reservations/${p.id}`);
    if (!got) throw fail(404, `no reservation ${p.id}`);
    return [200, got.value];
  },
  'POST /v1/reservations/:id/commit': guarded(async (_r, p, _b, _u, { claims }) => [200, await settle(p.id, 'commit', claims.sub)]),
  'DELETE /v1/reservations/:id': guarded(async (_r, p, _b, _u, { claims }) => [200, await settle(p.id, 'release', claims.sub)]),
  /** Would a workload of `amount` quota units costing `cost` credits be let in now? And if not, why. */
  'POST /v1/admission': guarded(async (_r, _p, body) => {
    const tenant = tenantOf(body.tenant, 'tenant');
    const amount = amountOf(body);
    const cost = body.cost === undefined ? 0 : field(body, 'cost', (v) => Number.isInteger(v) && v >= 0 && v <= 1e9, 'a whole number from 0 to 1e9');
    const a = await account(tenant);
    const reasons = [];
    if (a.reserved + amount > a.quota) reasons.push(`quota: ${amount} more would exceed ${a.quota} (${a.reserved} reserved)`);
    if (a.balance < cost) reasons.push(`funds: costs ${cost}, the wallet holds ${a.balance}`);
    return [200, { admitted: reasons.length === 0, reasons, ...view(a) }];
  }),
});
