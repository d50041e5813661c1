import type { Logger } from 'pino';
import type { ClusterPaths } from '../config/paths.js';
import { expectedUnits, type LoadedProfile, type NodeSpec, nodeMemory, nodeVcpus, servicesOn } from '../config/profile.js';
import { UsageError } from '../core/errors.js';
import { ownedPid } from '../core/proc.js';
import { ensureHarnessKey } from './ssh-key.js';
import { type ExecResult, SshPool, type SshTarget } from './ssh-pool.js';
import { type NodeRecord, nodeFiles, readNodeRecord } from './state.js';

export class CommandFailed extends Error {
  override name = 'CommandFailed';
}

/**
 * A handle on one cluster (profile + state dir): node specs, their runtime records, and one
 * pooled SSH connection per node. Lanes and probes talk to nodes only through this.
 */
export class Cluster {
  readonly pool = new SshPool();

  private constructor(
    readonly profile: LoadedProfile,
    readonly paths: ClusterPaths,
    readonly key: { privateKey: string; publicKey: string },
    readonly log: Logger,
  ) {}

  static async open(profile: LoadedProfile, paths: ClusterPaths, log: Logger): Promise<Cluster> {
    return new Cluster(profile, paths, await ensureHarnessKey(paths.keys), log);
  }

  spec(name: string): NodeSpec {
    const n = this.profile.nodes.find((x) => x.name === name);
    if (!n)
      throw new UsageError(
        `unknown node "${name}" (profile ${this.profile.name} has: ${this.profile.nodes.map((x) => x.name).join(', ')})`,
      );
    return n;
  }

  nodeIndex(name: string): number {
    return this.profile.nodes.findIndex((x) => x.name === name) + 1;
  }

  units(name: string): string[] {
    return expectedUnits(this.profile, this.spec(name));
  }

  memoryMiB(name: string): number {
    return nodeMemory(this.profile, this.spec(name));
  }

  vcpus(name: string): number {
    return nodeVcpus(this.profile, this.spec(name));
  }

  /** Guest ports to forward: the node's own plus every exposed port of the services on it. */
  forwards(name: string): Record<string, number> {
    const spec = this.spec(name);
    const out: Record<string, number> = {};
    for (const f of spec.forwards) out[f.name] = f.port;
    for (const [svc, c] of servicesOn(this.profile, spec)) for (const p of c.ports) if (p.expose) out[`${svc}-${p.name}`] = p.port;
    return out;
  }

  files(name: string) {
    return nodeFiles(this.paths.state, name);
  }

  async pid(name: string): Promise<number | null> {
    const f = this.files(name);
    return ownedPid(f.pidfile, f.pidfile);
  }

  async record(name: string): Promise<NodeRecord> {
    const r = await readNodeRecord(this.paths.state, name);
    if (!r) throw new UsageError(`${name} has not been started (no ${this.files(name).record}); run: ultracloud start`);
    return r;
  }

  async hostPort(name: string, portName: string): Promise<number> {
    const r = await this.record(name);
    const p = r.ports[portName];
    if (!p) throw new UsageError(`${name} has no forwarded port "${portName}" (has: ${Object.keys(r.ports).join(', ')})`);
    return p.host;
  }

  async target(name: string): Promise<SshTarget> {
    return { node: name, port: await this.hostPort(name, 'ssh'), privateKey: this.key.privateKey, hostKeyFile: this.files(name).hostKey };
  }

  async exec(name: string, command: string, opts: { timeoutMs?: number; stdin?: string } = {}): Promise<ExecResult> {
    return this.pool.exec(await this.target(name), command, { timeoutMs: 60000, ...opts });
  }

  /** Run a command that must succeed; its stderr is in the error. */
  async sh(name: string, command: string, opts: { timeoutMs?: number; stdin?: string } = {}): Promise<string> {
    const r = await this.exec(name, command, opts);
    if (r.code !== 0) throw new CommandFailed(`${name}: \`${command}\` exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 2000)}`);
    return r.stdout;
  }

  close(): void {
    this.pool.closeAll();
  }
}
