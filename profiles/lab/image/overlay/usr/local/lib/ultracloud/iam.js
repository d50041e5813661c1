// iam (lab): issues HMAC-signed tokens with a signing key kept in chainfire (etcd), so every
// control-plane node verifies what any other issued; tampered or expired tokens are refused.
'use strict';
const crypto = require('node:crypto');
const { serve, request, sleep } = require('./http-json.js');

const PORT = Number(process.env.IAM_PORT || 8080);
const ETCD = process.env.CHAINFIRE_ENDPOINT || 'http://127.0.0.1:2379';
const KEY_NAME = '/ultracloud/iam/signing-key';
const b64 = (s) => Buffer.from(s).toString('base64');
const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** Create the key once, cluster-wide: a txn that only puts when the key does not exist yet. */
async function loadSigningKey() {
  if (process.env.IAM_SIGNING_KEY_OVERRIDE) return Buffer.from(process.env.IAM_SIGNING_KEY_OVERRIDE);
  const candidate = crypto.randomBytes(32).toString('hex');
  for (;;) {
    try {
      const r = await request('POST', `${ETCD}/v3/kv/txn`, {
        compare: [{ key: b64(KEY_NAME), target: 'CREATE', create_revision: '0' }],
        success: [{ request_put: { key: b64(KEY_NAME), value: b64(candidate) } }],
        failure: [{ request_range: { key: b64(KEY_NAME) } }],
      });
      if (r.status === 200) {
        if (r.body.succeeded) return Buffer.from(candidate);
        const kv = r.body.responses?.[0]?.response_range?.kvs?.[0];
        if (kv) return Buffer.from(Buffer.from(kv.value, 'base64').toString());
      }
      console.error(`iam: chainfire txn answered ${r.status}; retrying`);
    } catch (e) {
      console.error(`iam: waiting for chainfire (${e.message})`);
    }
    await sleep(1000);
  }
}

function sign(key, claims) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = b64url(crypto.createHmac('sha256', key).update(`${head}.${body}`).digest());
  return `${head}.${body}.${sig}`;
}

function verify(key, token) {
  const parts = String(token || '').split('.');
  if (parts.length !== 3) return { valid: false, reason: 'malformed token' };
  const expected = crypto.createHmac('sha256', key).update(`${parts[0]}.${parts[1]}`).digest();
  const given = Buffer.from(parts[2], 'base64url');
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return { valid: false, reason: 'invalid signature' };
  let claims;
  try { claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString()); } catch { return { valid: false, reason: 'malformed claims' }; }
  if (typeof claims.exp !== 'number' || claims.exp * 1000 < Date.now()) return { valid: false, reason: 'expired' };
  return { valid: true, claims };
}

(async () => {
  const key = await loadSigningKey();
  const keyId = crypto.createHash('sha256').update(key).digest('hex').slice(0, 12);
  console.log(`iam: signing key ${keyId} loaded`);
  serve('iam', PORT, {
    'GET /health': async () => [200, { status: 'ok', service: 'iam', node: process.env.NODE_NAME, keyId }],
    'POST /v1/tokens': async (_req, _p, body) => {
      if (!body.subject) return [400, { error: 'subject is required' }];
      const ttl = Math.min(Number(body.ttlSeconds || 3600), 86400);
      const now = Math.floor(Date.now() / 1000);
      const claims = { sub: String(body.subject), scopes: body.scopes || [], iat: now, exp: now + ttl, iss: process.env.NODE_NAME };
      return [201, { token: sign(key, claims), claims, keyId }];
    },
    'POST /v1/verify': async (req, _p, body) => {
      const token = body.token || (req.headers.authorization || '').replace(/^Bearer /, '');
      const v = verify(key, token);
      return [v.valid ? 200 : 401, { ...v, verifiedBy: process.env.NODE_NAME, keyId }];
    },
  });
})();
