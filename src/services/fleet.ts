import { z } from 'zod';
import type { Node } from '../cluster/node.js';
import { CheckFailed, errorMessage } from '../core/errors.js';
import { http } from '../probes/http.js';
import { defineService, ServiceClient } from './service.js';
import { ControlApiClient, type TenantToken } from './tenant-api.js';

const Params = z.strictObject({});
type Params = z.output<typeof Params>;

/** Where fleet-scheduler put one replica of a service: a worker, or null while no worker is eligible. */
export interface FleetPlacement {
  service: string;
  index: number;
  node: string | null;
  port: number;
  since: string;
  reason: string;
}

export interface FleetService {
  name: string;
  replicas: number;
  port: number;
  placements: FleetPlacement[];
}

export interface FleetNode {
  node: string;
  alive: boolean;
  drained: boolean;
  instances: string[];
}

/** A running instance as its node-agent records it (pids/<unit>.json). */
export interface FleetInstance {
  unit: string;
  service: string;
  index: number;
  port: number;
  pid: number;
}

/** What an instance answers on its port: who it is, and where. */
export interface InstanceAnswer {
  service: string;
  index: number;
  node: string;
  since: string;
}

/**
 * fleet-scheduler's API (any control-plane node serves it; writes need an iam token): the services
 * the deployer declared (read-only here) with their placements, workers with heartbeat and drain
 * state, the leader.
 */
export class FleetSchedulerClient extends ControlApiClient<Params> {
  services(who: TenantToken): Promise<FleetService[]> {
    return this.api.ok(who, 'GET', '/v1/services');
  }

  workers(who: TenantToken): Promise<FleetNode[]> {
    return this.api.ok(who, 'GET', '/v1/nodes');
  }

  drain(who: TenantToken, node: string, reason: string): Promise<unknown> {
    return this.api.ok(who, 'PUT', `/v1/nodes/${encodeURIComponent(node)}/drain`, { reason });
  }

  undrain(who: TenantToken, node: string): Promise<unknown> {
    return this.api.ok(who, 'DELETE', `/v1/nodes/${encodeURIComponent(node)}/drain`);
  }

  /** One instance's /health: whether it leads. */
  health(node: Node): Promise<{ node: string; leading: boolean }> {
    return this.healthOf(node);
  }

  leader(who: TenantToken): Promise<{ id: string; node: string; since: string } | null> {
    return this.api.ok(who, 'GET', '/v1/leader');
  }
}

/** node-agent on a worker: the instances it runs (its pid files), and each instance's own answer. */
export class NodeAgentClient extends ServiceClient<Params> {
  async instances(node: Node): Promise<FleetInstance[]> {
    const r = await http('GET', `${await node.url(this.svc.port('agent'))}/health`, { timeoutMs: 10_000 }).catch(async (e: unknown) => {
      throw new CheckFailed(`node-agent on ${node}: /health unreachable (${errorMessage(e)}); ${await this.describe(node)}`);
    });
    if (r.status !== 200) throw new CheckFailed(`node-agent on ${node}: /health answered ${r.status}`);
    return (r.json as { instances: FleetInstance[] }).instances;
  }

  /** GET / of an instance on its node's port. */
  async ask(node: Node, port: number): Promise<InstanceAnswer> {
    const r = await http('GET', `${await node.url(port)}/`, { timeoutMs: 10_000 });
    if (r.status !== 200) throw new CheckFailed(`the instance on ${node}:${port} answered ${r.status}`);
    return r.json as InstanceAnswer;
  }
}

export const fleetScheduler = defineService({
  name: 'fleet-scheduler',
  description: 'places declared host-native service replicas on workers; drain and failover; one leader',
  params: Params,
  client: (svc) => new FleetSchedulerClient(svc),
});

export const nodeAgent = defineService({
  name: 'node-agent',
  description: 'heartbeats as a chainfire lease; runs the instances placed on its worker as systemd units',
  params: Params,
  client: (svc) => new NodeAgentClient(svc),
});
