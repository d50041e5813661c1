import { z } from 'zod';
import type { Node } from '../cluster/node.js';
import type { NodeRegistration } from '../config/install-contract.js';
import { CheckFailed, errorMessage } from '../core/errors.js';
import { http } from '../probes/http.js';
import { defineService, ServiceClient } from './service.js';

const Params = z.strictObject({
  /** Where the bootstrap node keeps the admin token it made (root only; handed to the service as a credential). */
  tokenFile: z.string().startsWith('/').default('/etc/ultracloud/deployer/admin.token'),
  /** The service's state file (DynamicUser: systemd keeps it under /var/lib/private). */
  stateFile: z.string().startsWith('/').default('/var/lib/private/deployer/state.json'),
});
type Params = z.output<typeof Params>;

/** A node as the deployer's admin API lists it. */
export interface DeployerNode {
  registration: NodeRegistration;
  registeredAt: string;
  phoneHomes: unknown[];
  desiredSystem: { state: string };
}

export interface DeployerReply {
  status: number;
  body: Record<string, unknown>;
}

/**
 * The cluster's deployer (on the bootstrap node): its admin API with the token the node made,
 * read over SSH as root, the way an operator on that node would.
 */
export class DeployerClient extends ServiceClient<Params> {
  node(): Node {
    const [n] = this.nodes();
    if (!n) throw new CheckFailed('no node runs the deployer');
    return n;
  }

  get stateFile(): string {
    return this.svc.params.stateFile;
  }

  private token: string | null = null;

  private async adminToken(): Promise<string> {
    this.token ??= (await this.node().succeed(['cat', this.svc.params.tokenFile])).trim();
    return this.token;
  }

  /** One admin API call; the reply whatever its status (a refusal is evidence too). */
  async call(method: string, route: string, body?: unknown): Promise<DeployerReply> {
    const n = this.node();
    const url = `${await n.url(this.svc.port('api'))}${route}`;
    const r = await http(method, url, { body, headers: { authorization: `Bearer ${await this.adminToken()}` }, timeoutMs: 15_000 }).catch(
      async (e: unknown) => {
        throw new CheckFailed(`deployer on ${n}: ${method} ${route} unreachable (${errorMessage(e)}); ${await this.describe(n)}`);
      },
    );
    return { status: r.status, body: (r.json ?? { text: r.text }) as Record<string, unknown> };
  }

  /** Pre-register a machine (idempotent: the same request again is `unchanged`). */
  async preRegister(reg: NodeRegistration): Promise<DeployerReply> {
    return this.call('POST', '/api/v1/admin/nodes', reg);
  }

  /** Declare a service for fleet-scheduler (the deployer stores it and publishes it to chainfire): 201 made, 200 unchanged or replaced. */
  async declareService(name: string, spec: { replicas: number; port: number }): Promise<void> {
    const r = await this.call('PUT', `/api/v1/admin/services/${encodeURIComponent(name)}`, spec);
    if ((r.status !== 200 && r.status !== 201) || r.body.published !== true)
      throw new CheckFailed(`deployer on ${this.node()}: declaring service ${name} answered ${r.status}: ${JSON.stringify(r.body)}`);
  }

  /** Remove a declared service; true if it existed. */
  async removeService(name: string): Promise<boolean> {
    const r = await this.call('DELETE', `/api/v1/admin/services/${encodeURIComponent(name)}`);
    if (r.status !== 200 && r.status !== 404)
      throw new CheckFailed(`deployer on ${this.node()}: removing service ${name} answered ${r.status}: ${JSON.stringify(r.body)}`);
    return r.status === 200;
  }

  async list(): Promise<Record<string, DeployerNode>> {
    const r = await this.call('GET', '/api/v1/admin/nodes');
    if (r.status !== 200)
      throw new CheckFailed(`deployer on ${this.node()}: listing nodes answered ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body.nodes as Record<string, DeployerNode>;
  }
}

export const deployer = defineService({
  name: 'deployer',
  description: "the cluster's deployer: enrollment, phone-home, install plans, admin pre-registration, declared services; state on disk",
  params: Params,
  client: (svc) => new DeployerClient(svc),
});
