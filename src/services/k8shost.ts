import { z } from 'zod';
import type { Node } from '../cluster/node.js';
import { CheckFailed } from '../core/errors.js';
import { defineService } from './service.js';
import { ControlApiClient, type TenantToken } from './tenant-api.js';

const Params = z.strictObject({});

export type Plural = 'pods' | 'services';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; uid: string; resourceVersion: string; labels?: Record<string, string> };
  spec: unknown;
  status?: unknown;
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'ERROR';
  object: KubeObject & { message?: string };
}

export interface WatchOptions {
  /** What the server is asked to bound the stream to. */
  timeoutSeconds: number;
  /** When the client gives up on a stream that did not end by itself. */
  deadlineMs: number;
  /** Run once the stream has answered (its snapshot is taken): the changes the watch must then show. */
  during?: () => Promise<void>;
}

/**
 * k8shost: Kubernetes-shaped pods and services (lab: in control-apis.service, state in chainfire),
 * spoken to as a Kubernetes client does, watches included.
 */
export class K8shostClient extends ControlApiClient<z.output<typeof Params>> {
  health(node: Node): Promise<{ objects: number }> {
    return this.healthOf<{ objects: number }>(node);
  }

  create(who: TenantToken, plural: Plural, ns: string, body: unknown): Promise<KubeObject> {
    return this.api.ok(who, 'POST', `/api/v1/namespaces/${ns}/${plural}`, body);
  }

  async list(who: TenantToken, plural: Plural, ns: string): Promise<KubeObject[]> {
    return (await this.api.ok<{ items: KubeObject[] }>(who, 'GET', `/api/v1/namespaces/${ns}/${plural}`)).items;
  }

  delete(who: TenantToken, plural: Plural, ns: string, name: string): Promise<KubeObject> {
    return this.api.ok(who, 'DELETE', `/api/v1/namespaces/${ns}/${plural}/${name}`);
  }

  /**
   * Watch `plural` in `ns` on the LAST API node, reading until the server ends the stream. A stream
   * still open at `deadlineMs` fails, naming the node, what it sent and what its process is doing.
   */
  async watch(
    who: TenantToken,
    plural: Plural,
    ns: string,
    o: WatchOptions,
  ): Promise<{ events: WatchEvent[]; endedAfterMs: number; node: string }> {
    const node = this.nodes().at(-1)!;
    const url = `${await node.url(this.svc.port('api'))}/api/v1/namespaces/${ns}/${plural}?watch=1&timeoutSeconds=${o.timeoutSeconds}`;
    const abort = new AbortController();
    const deadline = setTimeout(() => abort.abort(), o.deadlineMs);
    const events: WatchEvent[] = [];
    const t0 = performance.now();
    try {
      const res = await fetch(url, { headers: { authorization: `Bearer ${who.token}` }, signal: abort.signal });
      if (res.status !== 200)
        throw new CheckFailed(
          `k8shost on ${node} refused the watch of ${plural} in ${ns}: ${res.status} ${(await res.text()).slice(0, 300)}`,
        );
      const reading = (async () => {
        let buf = '';
        const decoder = new TextDecoder();
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            events.push(JSON.parse(buf.slice(0, nl)) as WatchEvent);
            buf = buf.slice(nl + 1);
          }
        }
      })();
      await o.during?.().catch((e: unknown) => {
        reading.catch(() => {}); // the abort ends the read: its rejection is this failure's, not a new one
        abort.abort();
        throw e;
      });
      await reading;
      return { events, endedAfterMs: performance.now() - t0, node: node.name };
    } catch (e) {
      if (!abort.signal.aborted || e instanceof CheckFailed) throw e;
      const seen = events.map((x) => `${x.type} ${x.object.metadata?.name ?? x.object.message}`).join(', ') || 'none';
      throw new CheckFailed(
        `k8shost on ${node}: the watch of ${plural} in ${ns} (timeoutSeconds=${o.timeoutSeconds}) had not ended after ${o.deadlineMs / 1000} s; events read: ${seen}; ${await this.describe(node)}`,
      );
    } finally {
      clearTimeout(deadline);
    }
  }
}

export const k8shost = defineService({
  name: 'k8shost',
  description: 'Kubernetes-shaped pod and service API (lab: small service in control-apis.service, state in chainfire; runs no pods)',
  params: Params,
  client: (svc) => new K8shostClient(svc),
});
