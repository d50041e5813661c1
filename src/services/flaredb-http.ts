import { z } from 'zod';
import type { Node } from '../cluster/node.js';
import { CheckFailed } from '../core/errors.js';
import { http } from '../probes/http.js';
import { defineService, ServiceClient } from './service.js';

/** flaredb's HTTP KV surface: reads from the node's own server, writes through the primary. */
const Params = z.strictObject({});
type Params = z.output<typeof Params>;

export class FlaredbHttpClient extends ServiceClient<Params> {
  /** GET /v1/kv/<key> on `node` (or on any base URL that routes to the surface, such as the gateway's prefix). */
  async read(base: Node | string, key: string): Promise<{ status: number; value?: string }> {
    const url = typeof base === 'string' ? base : await base.url(this.svc.port('api'));
    const r = await http('GET', `${url}/v1/kv/${encodeURIComponent(key)}`);
    if (r.status !== 200 && r.status !== 404)
      throw new CheckFailed(`flaredb-http at ${url}: GET ${key} answered ${r.status}: ${r.text.slice(0, 200)}`);
    return { status: r.status, value: (r.json as { value?: string } | undefined)?.value };
  }
}

export const flaredbHttp = defineService({
  name: 'flaredb-http',
  description: "flaredb's HTTP KV surface",
  params: Params,
  client: (svc) => new FlaredbHttpClient(svc),
});
