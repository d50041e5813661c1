import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterCa, type Leaf } from '../../src/cluster/cluster-ca.js';
import { ETCD, etcdArgs, freePort, LIB, until } from '../helpers/control-apis.js';

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies of several shapes
type Obj = Record<string, any>;
const ADMIN_SECRET = 'bootstrap-admin-secret';

/**
 * The lab's iam, the file the image ships, on this host against a real etcd, as two nodes (two
 * processes on one key set): key rotation with a retirement window, credentials and their
 * rotation, the one-time admin bootstrap, and the mTLS listener with the cluster CA's CRL.
 */
describe('iam (the lab image’s iam.js on a real etcd)', () => {
  let dir: string;
  let etcd: string;
  const procs: ResultPromise[] = [];
  const iam: string[] = [];
  let mtlsPort: number;
  let ca: ClusterCa;
  let clients: { a: Leaf; b: Leaf };

  const call = async (base: string, method: string, p: string, body?: unknown, token?: string) => {
    const r = await fetch(`${base}${p}`, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, body: (await r.json()) as Obj };
  };
  const admin = async () =>
    (await call(iam[0]!, 'POST', '/v1/tokens', { credential: { id: 'admin', secret: ADMIN_SECRET } })).body.token as string;

  /** A GET over mTLS with `client` (or none): the answer, or the error that refused it. */
  const mtls = (client: Leaf | null, caPem: string) =>
    new Promise<{ status?: number; body?: Obj; error?: string }>((resolve) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: mtlsPort,
          path: '/v1/whoami',
          ca: caPem,
          ...(client ? { cert: client.cert, key: client.key } : {}),
          timeout: 5000,
        },
        (res) => {
          let raw = '';
          res.on('data', (d) => (raw += d));
          res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(raw) as Obj }));
        },
      );
      req.on('error', (e) => resolve({ error: e.message }));
      req.end();
    });

  const startIam = async (creds: string, port: number, extra: Record<string, string> = {}) => {
    const p = execa('node', [`${LIB}/iam.js`], {
      env: {
        ...process.env,
        NODE_NAME: `node0${iam.length + 1}`,
        CHAINFIRE_ENDPOINT: etcd,
        IAM_PORT: String(port),
        CREDENTIALS_DIRECTORY: creds,
        ...extra,
      },
      reject: false,
      all: true,
      cleanup: true,
    });
    procs.push(p);
    await until('iam', `http://127.0.0.1:${port}/health`);
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'uc-iam-'));
    const [client, peer, p1, p2] = await Promise.all([1, 2, 3, 4].map(freePort));
    mtlsPort = await freePort();
    etcd = `http://127.0.0.1:${client}`;
    procs.push(execa(ETCD, etcdArgs(dir, client!, peer!), { reject: false, cleanup: true }));
    await until('etcd', `${etcd}/health`);
    ca = await ClusterCa.open(path.join(dir, 'pki'));
    const server = await ca.issue('iam-node01', { server: { ips: ['127.0.0.1'], dns: ['node01'] } });
    clients = { a: await ca.issue('ops-client-1'), b: await ca.issue('ops-client-2') };
    const creds1 = path.join(dir, 'creds1');
    const creds2 = path.join(dir, 'creds2');
    mkdirSync(creds1);
    mkdirSync(creds2);
    writeFileSync(path.join(creds1, 'admin.secret'), `${ADMIN_SECRET}\n`);
    writeFileSync(path.join(creds1, 'tls-ca.pem'), await ca.cert);
    writeFileSync(path.join(creds1, 'tls-cert.pem'), server.cert);
    writeFileSync(path.join(creds1, 'tls-key.pem'), server.key);
    await ca.revoke(clients.a);
    writeFileSync(path.join(creds1, 'tls-crl.pem'), await ca.crl());
    // The second node's bootstrap file differs: a bootstrap never replaces the admin credential.
    writeFileSync(path.join(creds2, 'admin.secret'), 'another-secret\n');
    await startIam(creds1, p1!, { IAM_MTLS_PORT: String(mtlsPort) });
    iam.push(`http://127.0.0.1:${p1}`);
    await startIam(creds2, p2!);
    iam.push(`http://127.0.0.1:${p2}`);
  }, 60_000);

  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs);
    rmSync(dir, { recursive: true, force: true });
  });

  it('bootstraps the admin credential once and refuses privileged scopes and admin calls without it', async () => {
    expect((await call(iam[1]!, 'POST', '/v1/tokens', { credential: { id: 'admin', secret: 'another-secret' } })).status).toBe(401);
    const open = await call(iam[0]!, 'POST', '/v1/tokens', { subject: 'x', scopes: ['iam:admin'] });
    expect(open).toMatchObject({ status: 403, body: { error: expect.stringMatching(/iam:admin/) } });
    expect((await call(iam[0]!, 'POST', '/v1/keys/rotate', {})).status).toBe(401);
    const plain = (await call(iam[0]!, 'POST', '/v1/tokens', { subject: 'x' })).body.token as string;
    expect(await call(iam[0]!, 'POST', '/v1/keys/rotate', {}, plain)).toMatchObject({ status: 403 });
    expect((await call(iam[1]!, 'GET', '/v1/credentials', undefined, await admin())).status).toBe(200);
  });

  it('refuses bad bodies with a 400 naming the field', async () => {
    const token = await admin();
    for (const [body, name] of [
      [{ id: 'Bad Id', subject: 's' }, /id/],
      [{ id: 'ok-id', subject: '' }, /subject/],
      [{ id: 'ok-id', subject: 's', scopes: 'x' }, /scopes/],
      [{ id: 'ok-id', subject: 's', extra: 1 }, /extra/],
    ] as const) {
      const r = await call(iam[0]!, 'POST', '/v1/credentials', body, token);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatch(name);
    }
    expect((await call(iam[0]!, 'GET', '/v1/credentials', undefined, token)).body.credentials.map((c: Obj) => c.id)).toEqual(['admin']);
    expect((await call(iam[0]!, 'POST', '/v1/tokens', { subject: 's', ttlSeconds: 0 })).body.error).toMatch(/ttlSeconds/);
  });

  it('rotates the signing key: old tokens verify until the window ends, new ones name the new key everywhere', async () => {
    const old = (await call(iam[0]!, 'POST', '/v1/tokens', { subject: 'rot', ttlSeconds: 600 })).body;
    const r = await call(iam[0]!, 'POST', '/v1/keys/rotate', { graceSeconds: 2 }, await admin());
    expect(r.status).toBe(200);
    expect(r.body.retired.kid).toBe(old.keyId);
    expect((await call(iam[1]!, 'POST', '/v1/verify', { token: old.token })).status).toBe(200);
    const fresh = (await call(iam[1]!, 'POST', '/v1/tokens', { subject: 'rot' })).body;
    expect(fresh.keyId).toBe(r.body.active);
    expect((await call(iam[0]!, 'POST', '/v1/verify', { token: fresh.token })).status).toBe(200);
    await new Promise((ok) => setTimeout(ok, 2500));
    const late = await call(iam[1]!, 'POST', '/v1/verify', { token: old.token });
    expect(late).toMatchObject({ status: 401, body: { reason: expect.stringMatching(/retired/) } });
    expect((await call(iam[0]!, 'POST', '/v1/verify', { token: fresh.token })).status).toBe(200);
  });

  it('rotates a credential: the old secret is refused, the new one issues', async () => {
    const token = await admin();
    const made = await call(iam[0]!, 'POST', '/v1/credentials', { id: 'svc-a', subject: 'svc-a', scopes: ['credit:reserve'] }, token);
    expect(made.status).toBe(201);
    expect((await call(iam[0]!, 'POST', '/v1/credentials', { id: 'svc-a', subject: 'svc-a' }, token)).status).toBe(409);
    const rotated = await call(iam[1]!, 'POST', '/v1/credentials/svc-a/rotate', {}, token);
    expect(rotated.status).toBe(200);
    expect((await call(iam[0]!, 'POST', '/v1/tokens', { credential: { id: 'svc-a', secret: made.body.secret } })).status).toBe(401);
    const issued = await call(iam[0]!, 'POST', '/v1/tokens', { credential: { id: 'svc-a', secret: rotated.body.secret } });
    expect(issued).toMatchObject({ status: 201, body: { claims: { sub: 'svc-a', cred: 'svc-a', scopes: ['credit:reserve'] } } });
  });

  it('serves mTLS to certificates of the cluster CA only, and not to a revoked one', async () => {
    const caPem = await ca.cert;
    expect(await mtls(clients.b, caPem)).toMatchObject({ status: 200, body: { subject: 'ops-client-2', serial: clients.b.serial } });
    expect((await mtls(clients.a, caPem)).status).toBeUndefined();
    expect((await mtls(null, caPem)).status).toBeUndefined();
    const foreign = await ClusterCa.open(path.join(dir, 'foreign-pki'));
    expect((await mtls(await foreign.issue('intruder'), caPem)).status).toBeUndefined();
    // iam says why, naming the client (its last test: the first node is stopped to read its output).
    await new Promise((ok) => setTimeout(ok, 300));
    procs[1]!.kill('SIGTERM');
    const said = String((await procs[1]!).all);
    expect(said).toContain(`refused a client (ops-client-1, serial ${clients.a.serial}): CERT_REVOKED`);
    expect(said).toMatch(/refused a client \(intruder, serial \w+\): \w+/);
  });
});
