import type { Node } from '../cluster/node.js';
import { CheckFailed, errorMessage, UsageError } from '../core/errors.js';
import { http } from '../probes/http.js';
import { ServiceClient, type ServiceContext } from './service.js';

/** An iam bearer token: its subject is the tenant every call made with it is scoped to. */
export interface TenantToken {
  tenant: string;
  token: string;
}

export interface ApiReply<T> {
  status: number;
  /** A refusal says why in `error` (the lab's APIs) or `message` (Kubernetes-shaped ones). */
  body: T & { error?: string; message?: string };
}

/**
 * A tenant-scoped JSON API of the lab's control plane (plasmavmc, prismnet), reached on a node
 * through its SSH forward. `call` answers any status (a refusal is data for isolation checks);
 * `ok` insists on 2xx and names the service, the node and the refusal.
 */
export class TenantApi {
  constructor(
    private readonly service: string,
    private readonly node: () => Node,
    private readonly port: number,
  ) {}

  async call<T>(who: TenantToken, method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<ApiReply<T>> {
    const node = this.node();
    const r = await http(method, `${await node.url(this.port)}${path}`, {
      body,
      headers: { authorization: `Bearer ${who.token}` },
      timeoutMs,
    });
    return { status: r.status, body: (r.json ?? { error: r.text.slice(0, 300) }) as ApiReply<T>['body'] };
  }

  async ok<T>(who: TenantToken, method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    const r = await this.call<T>(who, method, path, body, timeoutMs);
    if (r.status >= 300)
      throw new CheckFailed(
        `${this.service} on ${this.node()} refused ${method} ${path} for tenant ${who.tenant}: ${r.status} ${r.body.error ?? r.body.message ?? ''}`,
      );
    return r.body;
  }
}

/**
 * A client of one of the lab's control APIs (plasmavmc, prismnet, coronafs): tenant calls go to
 * the first node that runs it; `healthOf` reads any API node's /health.
 */
export class ControlApiClient<Params> extends ServiceClient<Params> {
  readonly api: TenantApi;

  constructor(svc: ServiceContext<Params>) {
    super(svc);
    this.api = new TenantApi(svc.name, () => this.apiNode(), svc.port('api'));
  }

  apiNode(): Node {
    const [n] = this.svc.nodes();
    if (!n) throw new UsageError(`no node runs ${this.svc.name}`);
    return n;
  }

  protected async healthOf<T>(node: Node): Promise<T> {
    const port = this.svc.port('api');
    const r = await http('GET', `${await node.url(port)}/health`, { timeoutMs: 10_000 }).catch(async (e: unknown) => {
      const listening = (await node.exec(['ss', '-Hltn', `sport = :${port}`])).stdout.trim();
      throw new CheckFailed(
        `${this.svc.name} on ${node}: /health unreachable (${errorMessage(e)}); ${listening ? `port ${port} is listening` : `nothing listens on port ${port}`}; ${await this.describe(node)}`,
      );
    });
    if (r.status !== 200) throw new CheckFailed(`${this.svc.name} on ${node}: /health answered ${r.status} ${r.text.slice(0, 200)}`);
    return r.json as T;
  }
}
