import { z } from 'zod';
import type { Node } from '../cluster/node.js';
import { UsageError } from '../core/errors.js';
import { defineService, ServiceClient } from './service.js';

const prefix = z.string().regex(/^\/[a-z0-9-]+$/, 'a path prefix such as /iam');
const Params = z.strictObject({
  /** Path prefixes under which the gateway routes to each service. */
  routes: z.strictObject({ iam: prefix, flaredb: prefix, credit: prefix, nightlight: prefix.optional() }),
});
type Params = z.output<typeof Params>;
export type Route = keyof Params['routes'];

export class ApigatewayClient extends ServiceClient<Params> {
  node(): Node {
    const [n] = this.svc.nodes();
    if (!n) throw new UsageError('no node runs apigateway');
    return n;
  }

  /** The gateway as the outside world reaches it: its exposed port, forwarded to the host. */
  url(): Promise<string> {
    return this.svc.exposedUrl(this.node(), 'http');
  }

  /** Base URL of a routed service through the gateway, e.g. `${route('iam')}/health`. */
  async route(name: Route): Promise<string> {
    const p = this.svc.params.routes[name];
    if (!p) throw new UsageError(`the apigateway contract routes no "${name}"`);
    return `${await this.url()}${p}`;
  }
}

export const apigateway = defineService({
  name: 'apigateway',
  description: 'external API and proxy surface (lab: nginx)',
  params: Params,
  client: (svc) => new ApigatewayClient(svc),
});
