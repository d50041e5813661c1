import { timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { type InstallContract, NodeRegistration } from '../config/install-contract.js';
import { renderEnvFile } from '../core/shell.js';
import {
  type DeployerStore,
  DuplicateMachine,
  type FleetService,
  FleetServiceSpec,
  type NodeState,
  PortTaken,
  SERVICE_NAME,
} from './store.js';

/**
 * The lab deployer (the UltraCloud deployer's contract): admin pre-registration, phone-home
 * (machine identity in, install plan and bundle location out), per-node progress, the desired
 * system for the node's agent, and the bundles/systems it serves. Answers JSON, or shell
 * `KEY='value'` lines when the client asks for text/plain (the busybox installer).
 */
export interface DeployerOptions {
  contract: Pick<InstallContract, 'classes' | 'pools'>;
  store: DeployerStore;
  /** Bearer token the admin API demands (the harness makes one per run; guests never get it). */
  adminToken: string;
  /** Directory with bundles/<profile>.tar.gz and systems/<name>.tar.gz. */
  artifacts: string;
  /** The base URL guests use to reach this server (QEMU user networking: http://10.0.2.2:<port>). */
  publicUrl: (port: number) => string;
  /** pino's Logger on the host; the console in the cluster (the bundled deployer carries no pino). */
  log: DeployerLog;
  /**
   * Where declared services go for fleet-scheduler (chainfire, in the cluster): called with
   * every declared service after each change. None on the host, which has no scheduler.
   */
  publish?: (services: Record<string, FleetService>) => Promise<void>;
}

export interface DeployerLog {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

/** What guests may send: every body strict and bounded (a field the deployer does not know is a 400 naming it). */
const short = z.string().min(1).max(200);
const PhoneHome = z.strictObject({
  machine_id: short,
  mac: z
    .string()
    .regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i, 'a MAC address')
    .optional(),
});
const ProgressBody = z.strictObject({ stage: short, detail: z.string().max(2000).optional() });
const DesiredReport = z.strictObject({
  state: z.enum(['active', 'rolled-back']),
  system: short,
  previous: short.optional(),
  reason: z.string().max(2000).optional(),
});

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class Deployer {
  private server: http.Server;
  private publishing: Promise<void> = Promise.resolve();
  port = 0;

  constructor(private readonly o: DeployerOptions) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  get url(): string {
    return this.o.publicUrl(this.port);
  }

  get store(): DeployerStore {
    return this.o.store;
  }

  /** Loopback by default (the host-side deployer); the cluster's listens on every address. */
  async listen(port = 0, host = '127.0.0.1'): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this.port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://deployer');
    // No keep-alive: a client must never hold a socket to a deployer that has since restarted.
    res.setHeader('connection', 'close');
    const text = (req.headers.accept ?? '').includes('text/plain');
    const send = (status: number, body: Record<string, unknown>, env?: Record<string, string>) => {
      if (text && env) {
        res.writeHead(status, { 'content-type': 'text/plain' }).end(renderEnvFile(env));
      } else res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
    };
    try {
      const m = (re: RegExp) => re.exec(url.pathname);
      let g: RegExpExecArray | null;
      if (url.pathname.startsWith('/api/v1/admin/') && !this.authorized(req))
        throw new HttpError(401, 'admin API: missing or wrong bearer token');
      if (req.method === 'GET' && url.pathname === '/health')
        return send(200, { status: 'ok', service: 'deployer', nodes: Object.keys(this.store.nodes()).length });
      if (req.method === 'POST' && url.pathname === '/api/v1/admin/nodes') {
        const reg = NodeRegistration.parse(await readJson(req));
        if (!this.o.contract.classes[reg.class]) throw new HttpError(422, `unknown class "${reg.class}"`);
        const result = await this.store.register(reg).catch((e: unknown) => {
          throw e instanceof DuplicateMachine ? new HttpError(409, e.message) : e;
        });
        this.o.log.info(`deployer: pre-registered ${reg.id} (${result})`);
        return send(result === 'created' ? 201 : 200, { id: reg.id, result });
      }
      if (req.method === 'GET' && url.pathname === '/api/v1/admin/nodes') return send(200, { nodes: this.store.nodes() });
      if (req.method === 'GET' && url.pathname === '/api/v1/admin/services') return send(200, { services: this.store.services() });
      g = m(/^\/api\/v1\/admin\/services\/([^/]+)$/);
      if (g && (req.method === 'PUT' || req.method === 'DELETE')) {
        const name = decodeURIComponent(g[1]!);
        if (!SERVICE_NAME.test(name))
          throw new HttpError(400, `service name: must match ${SERVICE_NAME.source}, got ${JSON.stringify(name).slice(0, 60)}`);
        if (req.method === 'DELETE') {
          if (!(await this.store.removeService(name))) throw new HttpError(404, `no service "${name}"`);
          return send(200, { deleted: name, published: await this.publish() });
        }
        const spec = FleetServiceSpec.parse(await readJson(req));
        const result = await this.store.declareService(name, spec).catch((e: unknown) => {
          throw e instanceof PortTaken ? new HttpError(409, e.message) : e;
        });
        this.o.log.info(`deployer: service ${name} ${result}: ${spec.replicas} replica(s) on port ${spec.port}`);
        return send(result === 'created' ? 201 : 200, { ...this.store.services()[name], result, published: await this.publish() });
      }
      if (req.method === 'POST' && url.pathname === '/api/v1/phone-home') return await this.phoneHome(req, send);
      g = m(/^\/api\/v1\/nodes\/([^/]+)\/progress$/);
      if (g && req.method === 'POST') {
        const n = this.known(g[1]!);
        const p = ProgressBody.parse(await readJson(req));
        await this.store.update(n.registration.id, (s) => s.progress.push({ at: new Date().toISOString(), ...p }));
        this.o.log.info(`deployer: ${n.registration.id} ${p.stage}${p.detail ? ` (${p.detail})` : ''}`);
        return send(200, { ok: true });
      }
      g = m(/^\/api\/v1\/nodes\/([^/]+)\/desired-system$/);
      if (g) {
        const n = this.known(g[1]!);
        if (req.method === 'GET') return this.desiredSystem(n, send);
        const { state, system, ...detail } = DesiredReport.parse(await readJson(req));
        await this.store.update(n.registration.id, (s) => {
          s.desiredSystem = { state, system, at: new Date().toISOString(), detail };
        });
        this.o.log.info(`deployer: ${n.registration.id} desired system ${system} ${state}`);
        return send(200, { ok: true });
      }
      g = m(/^\/api\/v1\/(bundles|systems)\/([a-z0-9-]+)\.tar\.gz$/);
      if (req.method === 'GET' && g) {
        const file = path.join(this.o.artifacts, g[1]!, `${g[2]}.tar.gz`);
        if (!existsSync(file)) throw new HttpError(404, `no ${g[1]} ${g[2]}`);
        res.writeHead(200, { 'content-type': 'application/gzip' });
        createReadStream(file).pipe(res);
        return;
      }
      throw new HttpError(404, `no route ${req.method} ${url.pathname}`);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : err instanceof z.ZodError ? 400 : 500;
      const message =
        err instanceof z.ZodError
          ? err.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')
          : (err as Error).message;
      if (status >= 500) this.o.log.error(`deployer: ${req.method} ${url.pathname}: ${message}`);
      else this.o.log.warn(`deployer: ${req.method} ${url.pathname} -> ${status}: ${message}`);
      send(status, { error: message });
    }
  }

  /**
   * Hand every declared service to the scheduler's store: true once it took them, false when it
   * could not (the declaration is kept: `resync` and the next change try again).
   */
  async publish(): Promise<boolean> {
    const publish = this.o.publish;
    if (!publish) return false;
    try {
      // One at a time, each with the services as of its turn: an older list never lands last.
      this.publishing = this.publishing.catch(() => undefined).then(() => publish(this.store.services()));
      await this.publishing;
      return true;
    } catch (err) {
      this.o.log.warn(`deployer: publishing services failed, kept for the next resync: ${(err as Error).message}`);
      return false;
    }
  }

  private authorized(req: http.IncomingMessage): boolean {
    const given = Buffer.from(req.headers.authorization ?? '');
    const want = Buffer.from(`Bearer ${this.o.adminToken}`);
    return given.length === want.length && timingSafeEqual(given, want);
  }

  private known(id: string): NodeState {
    const n = this.store.node(id);
    if (!n) throw new HttpError(404, `unknown node "${id}"`);
    return n;
  }

  private async phoneHome(
    req: http.IncomingMessage,
    send: (s: number, b: Record<string, unknown>, e?: Record<string, string>) => void,
  ): Promise<void> {
    const body = PhoneHome.parse(await readJson(req));
    const n = this.store.byMachine(body.machine_id);
    if (!n) throw new HttpError(404, `machine "${body.machine_id}" is not pre-registered`);
    const id = n.registration.id;
    const plan = this.o.contract.classes[n.registration.class]!.install_plan;
    await this.store.update(id, (s) =>
      s.phoneHomes.push({ at: new Date().toISOString(), machine_id: body.machine_id, mac: body.mac, remote: req.socket.remoteAddress }),
    );
    const bundleUrl = `${this.url}/api/v1/bundles/${plan.profile}.tar.gz`;
    this.o.log.info(`deployer: phone-home from ${body.machine_id} -> ${id}: install ${plan.profile} onto ${plan.disk}`);
    send(
      200,
      { node_id: id, install_plan: plan, bundle_url: bundleUrl },
      { NODE_ID: id, INSTALL_PROFILE: plan.profile, INSTALL_DISK: plan.disk, BUNDLE_URL: bundleUrl },
    );
  }

  private desiredSystem(n: NodeState, send: (s: number, b: Record<string, unknown>, e?: Record<string, string>) => void): void {
    const d = n.registration.desired_system;
    if (!d) throw new HttpError(404, `${n.registration.id} has no desired system`);
    const systemUrl = `${this.url}/api/v1/systems/${d.target_system}.tar.gz`;
    send(
      200,
      { ...d, system_url: systemUrl },
      { TARGET_SYSTEM: d.target_system, SYSTEM_URL: systemUrl, HEALTH_CHECK: d.health_check, HEALTH_TIMEOUT_S: String(d.health_timeout_s) },
    );
  }
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 1 << 20) throw new HttpError(413, 'body over 1 MiB');
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
}
