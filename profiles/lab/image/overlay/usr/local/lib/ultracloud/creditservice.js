// creditservice (lab): quota, wallet, reservation and admission endpoints; every mutating call
// must carry a bearer token that iam (on the control plane) verifies.
'use strict';
const { serve } = require('./http-json.js');
const { guarded, IAM } = require('./iam-auth.js');

const PORT = Number(process.env.CREDIT_PORT || 8090);
const DEFAULT_QUOTA = Number(process.env.CREDIT_DEFAULT_QUOTA || 100);
const tenants = new Map(); // tenant -> { quota, wallet, reserved, reservations: [] }
let nextId = 1;

const tenant = (name) => {
  if (!tenants.has(name)) tenants.set(name, { quota: DEFAULT_QUOTA, wallet: 0, reserved: 0, reservations: [] });
  return tenants.get(name);
};

serve('creditservice', PORT, {
  'GET /health': async () => [200, { status: 'ok', service: 'creditservice', iam: IAM }],
  'GET /v1/quotas/:tenant': async (_r, p) => {
    const t = tenant(p.tenant);
    return [200, { tenant: p.tenant, quota: t.quota, reserved: t.reserved, available: t.quota - t.reserved }];
  },
  'PUT /v1/quotas/:tenant': guarded(async (_r, p, body) => {
    tenant(p.tenant).quota = Number(body.quota);
    return [200, { tenant: p.tenant, quota: tenant(p.tenant).quota }];
  }),
  'GET /v1/wallets/:tenant': async (_r, p) => [200, { tenant: p.tenant, balance: tenant(p.tenant).wallet }],
  'POST /v1/wallets/:tenant/credit': guarded(async (_r, p, body) => {
    const t = tenant(p.tenant);
    t.wallet += Number(body.amount || 0);
    return [200, { tenant: p.tenant, balance: t.wallet }];
  }),
  'POST /v1/reservations': guarded(async (_r, _p, body, _u, { claims }) => {
    const t = tenant(String(body.tenant));
    const amount = Number(body.amount);
    if (!(amount > 0)) return [400, { error: 'amount must be > 0' }];
    if (t.reserved + amount > t.quota) return [409, { error: 'quota exceeded', quota: t.quota, reserved: t.reserved }];
    t.reserved += amount;
    const r = { id: `r${nextId++}`, tenant: body.tenant, amount, by: claims.sub };
    t.reservations.push(r);
    return [201, { reservation: r, available: t.quota - t.reserved }];
  }),
  'POST /v1/admission': guarded(async (_r, _p, body) => {
    const t = tenant(String(body.tenant));
    const ok = t.reserved + Number(body.amount) <= t.quota;
    return [200, { admitted: ok, available: t.quota - t.reserved }];
  }),
});
