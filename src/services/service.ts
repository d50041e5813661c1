import type { z } from 'zod';
import type { Cluster } from '../cluster/cluster.js';
import type { Node } from '../cluster/node.js';
import { type ServiceContract, servicesOn } from '../config/profile.js';
import { UsageError } from '../core/errors.js';

/**
 * Everything about one service in one module (testcontainers' modules): the zod schema of its
 * contract parameters (`services.<name>.params` in a profile, checked when the profile loads) and
 * the client steps use. A client knows the contract; steps know only the client.
 */
export interface ServiceModule<Params extends z.ZodType, Client> {
  name: string;
  description: string;
  params: Params;
  client(svc: ServiceContext<z.output<Params>>): Client;
}

export function defineService<Params extends z.ZodType, Client>(m: ServiceModule<Params, Client>): ServiceModule<Params, Client> {
  return m;
}

/** What a client is given: its contract (unit, roles, ports, typed params) and the cluster's nodes. */
export class ServiceContext<Params> {
  constructor(
    readonly name: string,
    readonly contract: ServiceContract,
    readonly params: Params,
    readonly cluster: Cluster,
  ) {}

  get unit(): string {
    return this.contract.unit;
  }

  /** Nodes the contract places this service on, in profile order. */
  nodes(): Node[] {
    const placed = new Set(
      this.cluster.profile.nodes.filter((n) => servicesOn(this.cluster.profile, n).some(([s]) => s === this.name)).map((n) => n.name),
    );
    return this.cluster.nodes().filter((n) => placed.has(n.name));
  }

  /** The node of this name, which must run the service. */
  node(name: string): Node {
    const n = this.nodes().find((x) => x.name === name);
    if (!n) throw new UsageError(`${this.name} does not run on ${name} (it runs on: ${this.nodes().join(', ')})`);
    return n;
  }

  /** A declared port by name: the one place a client learns where to connect. */
  port(name: string): number {
    const p = this.contract.ports.find((x) => x.name === name);
    if (!p)
      throw new UsageError(
        `the ${this.name} contract declares no port "${name}" (has: ${this.contract.ports.map((x) => x.name).join(', ') || 'none'})`,
      );
    return p.port;
  }

  /** The host-side forward of an exposed port (QEMU hostfwd on 127.0.0.1): the external entrypoint. */
  async exposedUrl(node: Node, portName: string): Promise<string> {
    return `http://127.0.0.1:${await node.hostPort(`${this.name}-${portName}`)}`;
  }
}

/** What a service's process on a node is doing, for naming why it does not answer. */
export interface ServiceProcess {
  unit: string;
  active: string;
  pid: number;
  /** /proc/<pid>/stat state: R running, S sleeping, T stopped (SIGSTOP), Z zombie, ... */
  state: string | null;
}

/** What every client shares: its contract context, so faults and steps can name the unit and the nodes. */
export class ServiceClient<Params> {
  constructor(readonly svc: ServiceContext<Params>) {}

  get unit(): string {
    return this.svc.unit;
  }

  nodes(): Node[] {
    return this.svc.nodes();
  }

  /** Wait until the unit is active on every node of the service: a no-op unless it is deferred (left out of readiness). */
  async ready(): Promise<void> {
    const { deferred } = this.svc.contract;
    if (deferred) await Promise.all(this.nodes().map((n) => n.waitForUnit(this.unit, deferred.readyWithinSec * 1000)));
  }

  /** The service's unit on a node and its main process, as systemd and /proc have them. */
  async process(node: Node): Promise<ServiceProcess> {
    const r = await node.exec(['systemctl', 'show', '-p', 'ActiveState', '-p', 'MainPID', this.unit]);
    const props = Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split('=', 2) as [string, string]),
    );
    const [active, pid] = [props.ActiveState ?? 'unknown', props.MainPID ?? '0'];
    const stat = Number(pid) > 0 ? await node.exec(['cat', `/proc/${pid}/stat`]) : null;
    const state = stat?.code === 0 ? (/\) (\S)/.exec(stat.stdout)?.[1] ?? null) : null;
    return { unit: this.unit, active, pid: Number(pid), state };
  }

  /** Why the service on a node is not doing its job, as far as its unit and process tell. */
  async describe(node: Node): Promise<string> {
    const p = await this.process(node);
    const frozen = p.state === 'T' ? ' (stopped by a signal: the process is frozen)' : '';
    return `${p.unit} is ${p.active}, main pid ${p.pid || 'none'}${p.state ? ` in state ${p.state}${frozen}` : ''}`;
  }
}
