import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { REPO } from './cli.js';

/** The lab's guest services run on this host as they run in the guests: node, their own files, a real etcd. */
export const LIB = path.join(REPO, 'profiles/lab/image/overlay/usr/local/lib/ultracloud');
export const ETCD = '/var/cache/ultracloud/etcd/etcd';
const PDNS_SQLITE_SCHEMA = '/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql';

async function putJson(etcd: string, key: string, value: unknown): Promise<void> {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const r = await fetch(`${etcd}/v3/kv/put`, {
    method: 'POST',
    body: JSON.stringify({ key: b64(key), value: b64(JSON.stringify(value)) }),
  });
  if (!r.ok) throw new Error(`etcd put ${key}: ${r.status}`);
}

export const freePort = () =>
  new Promise<number>((ok, fail) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => ok(port));
    });
    s.on('error', fail);
  });

/** Poll `url` until it answers 2xx (or `status`). */
export async function until(what: string, url: string, ms = 30_000, status?: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (status === undefined ? r.ok : r.status === status) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`${what} did not answer ${url} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A one-member etcd on loopback ports, its data under `dir`. */
export function etcdArgs(dir: string, client: number, peer: number, extra: string[] = []): string[] {
  const [c, p] = [`http://127.0.0.1:${client}`, `http://127.0.0.1:${peer}`];
  return [
    '--data-dir',
    `${dir}/etcd`,
    '--listen-client-urls',
    c,
    '--advertise-client-urls',
    c,
    '--listen-peer-urls',
    p,
    '--initial-advertise-peer-urls',
    p,
    '--initial-cluster',
    `default=${p}`,
    ...extra,
  ];
}

export interface ControlApis {
  etcd: string;
  iam: string;
  prismnet: string;
  plasmavmc: string;
  coronafs: string;
  k8shost: string;
  creditservice: string;
  fiberlb: string;
  /** PowerDNS's HTTP API (flashdns) and its DNS port, both on 127.0.0.1. */
  flashdns: { api: string; key: string; dnsPort: number };
  /** Put a JSON value into chainfire (what an agent's registration writes). */
  put(key: string, value: unknown): Promise<void>;
  token(tenant: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * etcd, iam, the lab's small services (prismnet, coronafs, plasmavmc, k8shost, creditservice,
 * fiberlb's API) and flashdns's engine (PowerDNS, here on its sqlite3 backend, its API published
 * in etcd as the guest's flashdns-publish does) on loopback ports, in a temp dir; stop() kills
 * each by pid and removes the dir.
 */
export async function startControlApis(): Promise<ControlApis> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-apis-'));
  const [client, peer, iamPort, prismnetPort, plasmavmcPort, coronafsPort, k8shostPort, creditPort, fiberlbPort, dnsPort, pdnsApiPort] =
    await Promise.all([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map(freePort));
  const etcd = `http://127.0.0.1:${client}`;
  const procs: ResultPromise[] = [];
  const spawn = (file: string, argv: string[], env: Record<string, string>) => {
    const p = execa(file, argv, { env: { ...process.env, NODE_NAME: 'node01', ...env }, reject: false, all: true, cleanup: true });
    procs.push(p);
  };
  const stop = async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    spawn(ETCD, etcdArgs(dir, client!, peer!), {});
    await until('etcd', `${etcd}/health`);
    const common = { CHAINFIRE_ENDPOINT: etcd, CHAINFIRE_ENDPOINTS: etcd, IAM_ENDPOINTS: `http://127.0.0.1:${iamPort}` };
    spawn('node', [`${LIB}/iam.js`], { ...common, IAM_PORT: String(iamPort) });
    spawn('node', [`${LIB}/prismnet-api.js`], { ...common, PRISMNET_PORT: String(prismnetPort) });
    spawn('node', [`${LIB}/coronafs-api.js`], { ...common, CORONAFS_PORT: String(coronafsPort) });
    const pdnsKey = 'test-api-key';
    await execa('sqlite3', [`${dir}/pdns.sqlite3`], { input: readFileSync(PDNS_SQLITE_SCHEMA) });
    spawn(
      'pdns_server',
      [
        `--config-dir=${dir}`,
        `--socket-dir=${dir}`,
        '--launch=gsqlite3',
        `--gsqlite3-database=${dir}/pdns.sqlite3`,
        '--local-address=127.0.0.1',
        `--local-port=${dnsPort}`,
        '--api=yes',
        `--api-key=${pdnsKey}`,
        '--webserver=yes',
        '--webserver-address=127.0.0.1',
        `--webserver-port=${pdnsApiPort}`,
        '--guardian=no',
        '--daemon=no',
        '--disable-syslog',
      ],
      {},
    );
    const flashdns = { api: `http://127.0.0.1:${pdnsApiPort}`, key: pdnsKey, dnsPort: dnsPort! };
    spawn('node', [`${LIB}/fiberlb-api.js`], { ...common, FIBERLB_PORT: String(fiberlbPort), CLUSTER_IP: '127.0.0.1' });
    spawn('node', [`${LIB}/k8shost-api.js`], {
      ...common,
      K8SHOST_PORT: String(k8shostPort),
      PRISMNET_URL: `http://127.0.0.1:${prismnetPort}`,
      FIBERLB_URL: `http://127.0.0.1:${fiberlbPort}`,
    });
    spawn('node', [`${LIB}/creditservice.js`], { ...common, CREDIT_PORT: String(creditPort) });
    spawn('node', [`${LIB}/plasmavmc-api.js`], {
      ...common,
      PLASMAVMC_PORT: String(plasmavmcPort),
      PRISMNET_ENDPOINT: `http://127.0.0.1:${prismnetPort}`,
      CORONAFS_ENDPOINT: `http://127.0.0.1:${coronafsPort}`,
      PLASMAVMC_DELETE_WAIT_MS: '2000',
    });
    const apis = {
      iam: `http://127.0.0.1:${iamPort}`,
      prismnet: `http://127.0.0.1:${prismnetPort}`,
      plasmavmc: `http://127.0.0.1:${plasmavmcPort}`,
      coronafs: `http://127.0.0.1:${coronafsPort}`,
      k8shost: `http://127.0.0.1:${k8shostPort}`,
      creditservice: `http://127.0.0.1:${creditPort}`,
    };
    for (const [name, url] of Object.entries(apis)) await until(name, `${url}/health`);
    // fiberlb's /health asks haproxy, which is not here: its API answers an unauthenticated call with 401.
    const fiberlb = `http://127.0.0.1:${fiberlbPort}`;
    await until('fiberlb', `${fiberlb}/v1/loadbalancers`, 30_000, 401);
    await until('PowerDNS', `${flashdns.api}/api/v1/servers/localhost`, 30_000, 401);
    await putJson(etcd, '/ultracloud/flashdns/api', { url: flashdns.api, key: flashdns.key });
    return {
      etcd,
      ...apis,
      fiberlb,
      flashdns,
      put: (key, value) => putJson(etcd, key, value),
      token: async (tenant) => {
        const r = await fetch(`${apis.iam}/v1/tokens`, {
          method: 'POST',
          body: JSON.stringify({ subject: tenant }),
          headers: { 'content-type': 'application/json' },
        });
        return ((await r.json()) as { token: string }).token;
      },
      stop,
    };
  } catch (e) {
    await stop();
    const output = (await Promise.all(procs)).map((p) => `${p.command}:\n${String(p.all ?? '').slice(-1500)}`).join('\n');
    throw new Error(`${(e as Error).message}\n${output}`);
  }
}
