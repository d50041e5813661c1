// iam (lab): HMAC-signed tokens from a key set kept in chainfire (etcd), so every control-plane
// node verifies what any other issued. Keys rotate: a token names its key (kid), a retired key
// verifies its tokens until its window ends. Service credentials (hashed secrets in chainfire)
// are issued by an admin and rotated; the admin credential is bootstrapped once from a root-only
// file. With TLS material, a second listener requires client certificates from the cluster CA.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');
const path = require('node:path');
const { serve, router, fail, field, onlyFields, sleep } = require('./http-json.js');
const { Chainfire } = require('./chainfire.js');

const PORT = Number(process.env.IAM_PORT || 8080);
const MTLS_PORT = Number(process.env.IAM_MTLS_PORT || 8443);
const NODE = process.env.NODE_NAME;
const PREFIX = '/ultracloud/iam/';
const ACTIVE = `${PREFIX}active-key`;
const keyPath = (kid) => `${PREFIX}keys/${kid}`;
const credPath = (id) => `${PREFIX}credentials/${id}`;
const MAX_TTL = 86400;
const ADMIN_SCOPE = 'iam:admin';
const b64 = (s) => Buffer.from(s).toString('base64');
const b64url = (buf) => Buffer.from(buf).toString('base64url');
const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');
const newKey = () => ({ kid: crypto.randomBytes(6).toString('hex'), secret: crypto.randomBytes(32).toString('hex'), createdAt: new Date().toISOString() });
const cf = new Chainfire([process.env.CHAINFIRE_ENDPOINT || 'http://127.0.0.1:2379']);

/** A systemd credential's text (LoadCredential=), '' when absent or empty. */
const credential = (name) => {
  try { return fs.readFileSync(path.join(process.env.CREDENTIALS_DIRECTORY || '/nonexistent', name), 'utf8').trim(); } catch { return ''; }
};

// The key set this node signs and verifies with: { active: kid, keys: Map<kid, key> }.
let keyset = { active: null, keys: new Map() };
const override = process.env.IAM_SIGNING_KEY_OVERRIDE; // a fault's: this node alone signs with its own key

async function loadKeys() {
  if (override) {
    const k = { kid: `override-${sha256(override).slice(0, 8)}`, secret: override, createdAt: new Date().toISOString() };
    keyset = { active: k.kid, keys: new Map([[k.kid, k]]) };
    return;
  }
  const [active, keys] = await Promise.all([cf.get(ACTIVE), cf.list(`${PREFIX}keys/`)]);
  keyset = { active: active?.value.kid ?? null, keys: new Map(keys.map((k) => [k.value.kid, k.value])) };
}

/** The first key, once cluster-wide: a txn that writes it only while there is no active key. */
async function bootstrapKeys() {
  const k = newKey();
  await cf.call('/v3/kv/txn', {
    compare: [{ key: b64(ACTIVE), target: 'CREATE', create_revision: '0' }],
    success: [
      { request_put: { key: b64(keyPath(k.kid)), value: b64(JSON.stringify(k)) } },
      { request_put: { key: b64(ACTIVE), value: b64(JSON.stringify({ kid: k.kid })) } },
    ],
    failure: [],
  });
}

/**
 * The admin credential, from the bootstrap node's root-only file, registered once: a credential
 * that exists is never replaced (a second bootstrap, or a rotated admin secret, stays as it is).
 */
async function bootstrapAdmin() {
  const secret = credential('admin.secret');
  if (!secret) return;
  const made = await cf.create(credPath('admin'), { id: 'admin', subject: 'iam-admin', scopes: [ADMIN_SCOPE], secretHash: sha256(secret), createdAt: new Date().toISOString(), bootstrap: true });
  if (made) return console.log('iam: admin credential bootstrapped');
  const kept = await cf.get(credPath('admin'));
  console.log(`iam: admin credential already bootstrapped${kept?.value.secretHash === sha256(secret) ? '' : '; the bootstrap file differs and is not used (a bootstrap never replaces a credential)'}`);
}

function sign(key, claims) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: key.kid }));
  const body = b64url(JSON.stringify(claims));
  const sig = b64url(crypto.createHmac('sha256', key.secret).update(`${head}.${body}`).digest());
  return `${head}.${body}.${sig}`;
}

async function verify(token) {
  const parts = String(token || '').split('.');
  if (parts.length !== 3) return { valid: false, reason: 'malformed token' };
  let head;
  try { head = JSON.parse(Buffer.from(parts[0], 'base64url').toString()); } catch { return { valid: false, reason: 'malformed header' }; }
  if (typeof head.kid !== 'string') return { valid: false, reason: 'token names no signing key (kid)' };
  if (!keyset.keys.has(head.kid)) await loadKeys().catch(() => undefined); // rotated elsewhere a moment ago
  const key = keyset.keys.get(head.kid);
  if (!key) return { valid: false, reason: `unknown signing key ${head.kid}` };
  const expected = crypto.createHmac('sha256', key.secret).update(`${parts[0]}.${parts[1]}`).digest();
  const given = Buffer.from(parts[2], 'base64url');
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return { valid: false, reason: 'invalid signature' };
  if (key.verifyUntil && Date.parse(key.verifyUntil) < Date.now())
    return { valid: false, reason: `signing key ${key.kid} was retired at ${key.retiredAt}; its tokens were honoured until ${key.verifyUntil}` };
  let claims;
  try { claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString()); } catch { return { valid: false, reason: 'malformed claims' }; }
  if (typeof claims.exp !== 'number' || claims.exp * 1000 < Date.now()) return { valid: false, reason: 'expired' };
  return { valid: true, claims, kid: key.kid };
}

function issue(subject, scopes, ttlSeconds, extra = {}) {
  const key = keyset.keys.get(keyset.active);
  if (!key) throw fail(503, 'iam has no active signing key yet');
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: subject, scopes, iat: now, exp: now + ttlSeconds, iss: NODE, ...extra };
  return { token: sign(key, claims), claims, keyId: key.kid };
}

/** The caller's bearer token must be valid and carry the admin scope. */
async function requireAdmin(req) {
  const auth = req.headers.authorization || '';
  if (!auth.startsWith('Bearer ')) throw fail(401, `an admin bearer token (scope ${ADMIN_SCOPE}) is required`);
  const v = await verify(auth.slice(7));
  if (!v.valid) throw fail(401, `the bearer token is refused: ${v.reason}`);
  if (!(v.claims.scopes || []).includes(ADMIN_SCOPE)) throw fail(403, `the bearer token lacks scope ${ADMIN_SCOPE}`);
  return v.claims;
}

const isScopes = (v) => Array.isArray(v) && v.length <= 32 && v.every((s) => typeof s === 'string' && /^[a-z][a-z0-9:_.-]{0,63}$/.test(s));
const isTtl = (v) => Number.isInteger(v) && v >= 1 && v <= MAX_TTL;
const publicKey = (k) => ({ kid: k.kid, createdAt: k.createdAt, active: k.kid === keyset.active, ...(k.retiredAt ? { retiredAt: k.retiredAt, verifyUntil: k.verifyUntil } : {}) });
const publicCred = (c) => ({ id: c.id, subject: c.subject, scopes: c.scopes, createdAt: c.createdAt, ...(c.rotatedAt ? { rotatedAt: c.rotatedAt } : {}) });

const routes = {
  'GET /health': async () => [200, { status: 'ok', service: 'iam', node: NODE, keyId: keyset.active }],
  'POST /v1/tokens': async (_req, _p, body) => {
    onlyFields(body, ['subject', 'scopes', 'ttlSeconds', 'credential']);
    const ttl = field(body, 'ttlSeconds', isTtl, `an integer number of seconds, 1..${MAX_TTL}`, 3600);
    if (body.credential !== undefined) {
      const c = field(body, 'credential', (v) => v && typeof v.id === 'string' && typeof v.secret === 'string', 'an object { id, secret }');
      const stored = (await cf.get(credPath(c.id)))?.value;
      if (!stored || stored.secretHash !== sha256(c.secret)) throw fail(401, `credential ${c.id}: unknown id or wrong secret`);
      return [201, issue(stored.subject, stored.scopes, ttl, { cred: stored.id })];
    }
    const subject = field(body, 'subject', (v) => typeof v === 'string' && v.length > 0 && v.length <= 128, 'a non-empty string');
    const scopes = field(body, 'scopes', isScopes, 'an array of scope names', []);
    const privileged = scopes.find((s) => s.startsWith('iam:'));
    if (privileged) throw fail(403, `scope ${privileged} is only issued against a credential that holds it`);
    return [201, issue(subject, scopes, ttl)];
  },
  'POST /v1/verify': async (req, _p, body) => {
    const token = body.token || (req.headers.authorization || '').replace(/^Bearer /, '');
    const v = await verify(token);
    return [v.valid ? 200 : 401, { ...v, verifiedBy: NODE, keyId: v.kid ?? keyset.active }];
  },
  'GET /v1/keys': async () => {
    await loadKeys();
    return [200, { active: keyset.active, keys: [...keyset.keys.values()].map(publicKey) }];
  },
  /** A new active key; the one it replaces verifies its tokens for graceSeconds more (default: the longest token life). */
  'POST /v1/keys/rotate': async (req, _p, body) => {
    await requireAdmin(req);
    onlyFields(body, ['graceSeconds']);
    const grace = field(body, 'graceSeconds', isTtl, `an integer number of seconds, 1..${MAX_TTL}`, MAX_TTL);
    const active = await cf.get(ACTIVE);
    const old = active && (await cf.get(keyPath(active.value.kid)))?.value;
    if (!old) throw fail(503, 'iam has no active signing key to rotate');
    const k = newKey();
    const retired = { ...old, retiredAt: k.createdAt, verifyUntil: new Date(Date.now() + grace * 1000).toISOString() };
    const r = await cf.call('/v3/kv/txn', {
      compare: [{ key: b64(ACTIVE), target: 'MOD', mod_revision: String(active.modRevision) }],
      success: [
        { request_put: { key: b64(keyPath(k.kid)), value: b64(JSON.stringify(k)) } },
        { request_put: { key: b64(keyPath(old.kid)), value: b64(JSON.stringify(retired)) } },
        { request_put: { key: b64(ACTIVE), value: b64(JSON.stringify({ kid: k.kid })) } },
      ],
      failure: [],
    });
    if (!r.succeeded) throw fail(409, 'another rotation changed the active key meanwhile; ask again');
    await loadKeys();
    return [200, { active: k.kid, retired: publicKey(retired) }];
  },
  'GET /v1/credentials': async (req) => {
    await requireAdmin(req);
    return [200, { credentials: (await cf.list(`${PREFIX}credentials/`)).map((c) => publicCred(c.value)) }];
  },
  'POST /v1/credentials': async (req, _p, body) => {
    await requireAdmin(req);
    onlyFields(body, ['id', 'subject', 'scopes']);
    const id = field(body, 'id', (v) => typeof v === 'string' && /^[a-z][a-z0-9-]{1,62}$/.test(v), 'lowercase letters, digits and dashes, 2..63 long');
    const subject = field(body, 'subject', (v) => typeof v === 'string' && v.length > 0 && v.length <= 128, 'a non-empty string');
    const scopes = field(body, 'scopes', isScopes, 'an array of scope names', []);
    const secret = crypto.randomBytes(24).toString('hex');
    const c = { id, subject, scopes, secretHash: sha256(secret), createdAt: new Date().toISOString() };
    if (!(await cf.create(credPath(id), c))) throw fail(409, `credential ${id} exists`);
    return [201, { ...publicCred(c), secret }];
  },
  /** A new secret; the old one is refused from now on (tokens it already got live out their ttl). */
  'POST /v1/credentials/:id/rotate': async (req, { id }) => {
    await requireAdmin(req);
    const stored = await cf.get(credPath(id));
    if (!stored) throw fail(404, `no credential ${id}`);
    const secret = crypto.randomBytes(24).toString('hex');
    const c = { ...stored.value, secretHash: sha256(secret), rotatedAt: new Date().toISOString() };
    if (!(await cf.update(credPath(id), c, stored.modRevision))) throw fail(409, `credential ${id} changed meanwhile; ask again`);
    return [200, { ...publicCred(c), secret }];
  },
};

/**
 * The mTLS listener, when this node has TLS material: only clients whose certificate the cluster
 * CA signed (and its CRL, when deployed, does not revoke) get through. A refusal is logged with
 * its reason: the lane reads why a client was turned away.
 */
function serveMtls() {
  const [ca, cert, key, crl] = ['tls-ca.pem', 'tls-cert.pem', 'tls-key.pem', 'tls-crl.pem'].map(credential);
  if (!ca || !cert || !key) return;
  if (!crl) console.log('iam: mTLS without a CRL: revocation is not checked');
  const whoami = async (req) => {
    const peer = req.socket.getPeerCertificate();
    return [200, { subject: peer.subject?.CN, serial: peer.serialNumber, node: NODE }];
  };
  const handle = router({ ...routes, 'GET /v1/whoami': whoami });
  // Verified here rather than by rejectUnauthorized, which drops the connection without saying why.
  const server = https.createServer(
    { ca, cert, key, ...(crl ? { crl } : {}), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
    (req, res) => (req.socket.authorized ? handle(req, res) : res.destroy()),
  );
  server.prependListener('secureConnection', (socket) => {
    if (socket.authorized) return;
    const peer = socket.getPeerCertificate();
    console.log(`iam: mTLS refused a client${peer.subject ? ` (${peer.subject.CN}, serial ${peer.serialNumber})` : ' without a certificate'}: ${socket.authorizationError}`);
    socket.destroy();
  });
  server.on('tlsClientError', (e) => console.log(`iam: mTLS refused a client: ${e.code || ''} ${e.message}`));
  server.listen(MTLS_PORT, '0.0.0.0', () => console.log(`iam mTLS listening on :${MTLS_PORT} (server certificate serial ${new crypto.X509Certificate(cert).serialNumber})`));
}

(async () => {
  for (;;) {
    try {
      if (!override) {
        await bootstrapKeys();
        await bootstrapAdmin();
      }
      await loadKeys();
      if (keyset.keys.has(keyset.active)) break;
    } catch (e) {
      console.error(`iam: waiting for chainfire (${e.message})`);
    }
    await sleep(1000);
  }
  console.log(`iam: signing key ${keyset.active} active, ${keyset.keys.size} key(s) in the set`);
  if (!override) cf.watch([PREFIX], () => void loadKeys().catch((e) => console.error(`iam: key set reload: ${e.message}`)));
  serve('iam', PORT, routes);
  serveMtls();
})();
