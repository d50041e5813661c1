// Callers of the lab's APIs present an iam bearer token; iam (any control-plane node that answers)
// says whether it is valid. Its subject is the caller's tenant.
'use strict';
const { request, fail } = require('./http-json.js');

const IAM = (process.env.IAM_ENDPOINTS || 'http://127.0.0.1:8080').split(' ').filter(Boolean);

async function authorize(req) {
  const auth = req.headers.authorization || '';
  if (!auth.startsWith('Bearer ')) return { ok: false, status: 401, reason: 'missing bearer token' };
  let lastErr = 'no iam endpoint answered';
  for (const base of IAM) {
    try {
      const r = await request('POST', `${base}/v1/verify`, { token: auth.slice(7) });
      if (r.status === 200) return { ok: true, claims: r.body.claims, tenant: String(r.body.claims.sub) };
      if (r.status === 401) return { ok: false, status: 401, reason: `iam refused the token: ${r.body.reason}` };
      lastErr = `iam ${base} answered ${r.status}`;
    } catch (e) {
      lastErr = `iam ${base}: ${e.message}`;
    }
  }
  return { ok: false, status: 503, reason: lastErr };
}

/** A route handler that runs only for a valid token: fn(req, params, body, url, auth, res). */
const guarded = (fn) => async (req, params, body, url, res) => {
  const a = await authorize(req);
  if (!a.ok) throw fail(a.status, a.reason);
  return fn(req, params, body, url, a, res);
};

module.exports = { authorize, guarded, IAM };
