import { z } from 'zod';
import type { Node } from '../cluster/node.js';
import { defineService } from './service.js';
import { ControlApiClient, type TenantToken } from './tenant-api.js';

const Params = z.strictObject({});

export type BackendState = 'ready' | 'drain' | 'maint';

export interface LoadBalancer {
  id: string;
  name: string;
  port: number;
  mode: 'http' | 'tcp';
  address: string;
}

export interface Backend {
  id: string;
  pool: string;
  name: string;
  address: string;
  port: number;
  weight: number;
  state: BackendState;
}

/** A server as haproxy runs it: its status (UP, DRAIN, MAINT, DOWN...), weight and session counts. */
export interface LiveServer {
  status: string;
  weight: number;
  current: number;
  sessions: number;
  answered2xx: number;
}

export interface Pool {
  id: string;
  name: string;
  loadbalancer: string;
  algorithm: string;
  healthPath: string;
  backends: Backend[];
  live: Record<string, LiveServer> & { error?: string };
}

/**
 * fiberlb: load balancers, pools and backends through its API on the gateway (tenant-scoped by
 * iam token); a load balancer's frontend is reached as any client would, through its port.
 */
export class FiberlbClient extends ControlApiClient<z.output<typeof Params>> {
  health(node: Node): Promise<{ haproxyUptimeSeconds: number }> {
    return this.healthOf(node);
  }

  createLoadBalancer(who: TenantToken, body: { name: string; port: number; mode?: 'http' | 'tcp' }): Promise<LoadBalancer> {
    return this.api.ok(who, 'POST', '/v1/loadbalancers', body);
  }

  async loadBalancers(who: TenantToken): Promise<LoadBalancer[]> {
    return (await this.api.ok<{ loadbalancers: LoadBalancer[] }>(who, 'GET', '/v1/loadbalancers')).loadbalancers;
  }

  deleteLoadBalancer(who: TenantToken, id: string): Promise<unknown> {
    return this.api.ok(who, 'DELETE', `/v1/loadbalancers/${id}`);
  }

  createPool(who: TenantToken, body: { name: string; loadbalancer: string; algorithm?: string; healthPath?: string }): Promise<Pool> {
    return this.api.ok(who, 'POST', '/v1/pools', body);
  }

  pool(who: TenantToken, id: string): Promise<Pool> {
    return this.api.ok(who, 'GET', `/v1/pools/${id}`);
  }

  deletePool(who: TenantToken, id: string): Promise<unknown> {
    return this.api.ok(who, 'DELETE', `/v1/pools/${id}`);
  }

  addBackend(who: TenantToken, pool: string, body: { name: string; address: string; port: number; weight?: number }): Promise<Backend> {
    return this.api.ok(who, 'POST', `/v1/pools/${pool}/backends`, body);
  }

  setBackendState(who: TenantToken, id: string, state: BackendState): Promise<Backend> {
    return this.api.ok(who, 'PUT', `/v1/backends/${id}/state`, { state });
  }

  deleteBackend(who: TenantToken, id: string): Promise<unknown> {
    return this.api.ok(who, 'DELETE', `/v1/backends/${id}`);
  }

  /** The base URL of a load balancer's frontend, as a client on the gateway reaches it. */
  frontend(lb: LoadBalancer): Promise<string> {
    return this.apiNode().url(lb.port);
  }

  /** Everything the tenant has, deleted in order (backends, pools, load balancers): what an interrupted run left. */
  async sweep(who: TenantToken): Promise<string[]> {
    const gone: string[] = [];
    for (const p of (await this.api.ok<{ pools: { id: string }[] }>(who, 'GET', '/v1/pools')).pools) {
      for (const b of (await this.pool(who, p.id)).backends) await this.deleteBackend(who, b.id);
      await this.deletePool(who, p.id);
      gone.push(p.id);
    }
    for (const lb of await this.loadBalancers(who)) {
      await this.deleteLoadBalancer(who, lb.id);
      gone.push(lb.id);
    }
    return gone;
  }
}

export const fiberlb = defineService({
  name: 'fiberlb',
  description: 'load balancer (lab: haproxy driven by a small API and agent on the gateway, state in chainfire)',
  params: Params,
  client: (svc) => new FiberlbClient(svc),
});
