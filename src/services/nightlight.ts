import { z } from 'zod';
import type { Node } from '../cluster/node.js';
import { CheckFailed, UsageError } from '../core/errors.js';
import { http } from '../probes/http.js';
import { REMOTE_WRITE_HEADERS, remoteWriteBody, type Sample } from '../probes/remote-write.js';
import { defineService, ServiceClient } from './service.js';

const apiPath = z.string().startsWith('/');
const Params = z.strictObject({ remoteWritePath: apiPath, queryPath: apiPath });
type Params = z.output<typeof Params>;

/** nightlight in the lab is Prometheus with its remote-write receiver, reached through its exposed port. */
export class NightlightClient extends ServiceClient<Params> {
  node(): Node {
    const [n] = this.svc.nodes();
    if (!n) throw new UsageError('no node runs nightlight');
    return n;
  }

  url(): Promise<string> {
    return this.svc.exposedUrl(this.node(), 'http');
  }

  /** Prometheus remote-write (snappy protobuf); the status and the bytes sent. `via`: another base URL (the gateway's route). */
  async remoteWrite(samples: Sample[], via?: string): Promise<{ status: number; bytes: number; text: string }> {
    const body = remoteWriteBody(samples);
    const r = await http('POST', `${via ?? (await this.url())}${this.svc.params.remoteWritePath}`, {
      raw: body,
      headers: REMOTE_WRITE_HEADERS,
    });
    return { status: r.status, bytes: body.length, text: r.text };
  }

  /** The scrape targets nightlight is active on: each one's job and health ("up", "down", "unknown"). */
  async scrapeTargets(via?: string): Promise<{ job: string; health: string; lastError: string }[]> {
    const r = await http('GET', `${via ?? (await this.url())}/api/v1/targets?state=active`);
    const t = (r.json as { data?: { activeTargets?: { labels: { job: string }; health: string; lastError: string }[] } } | undefined)?.data
      ?.activeTargets;
    if (!t) throw new CheckFailed(`nightlight's targets: ${r.status} ${r.text.slice(0, 200)}`);
    return t.map((x) => ({ job: x.labels.job, health: x.health, lastError: x.lastError }));
  }

  /** An instant query's first value, or a CheckFailed saying what came back; `via`: another base URL (the gateway's route). */
  async queryValue(promql: string, via?: string): Promise<number> {
    const r = await http('GET', `${via ?? (await this.url())}${this.svc.params.queryPath}?query=${encodeURIComponent(promql)}`);
    const v = (r.json as { data?: { result?: { value: [number, string] }[] } } | undefined)?.data?.result?.[0]?.value?.[1];
    if (v === undefined) throw new CheckFailed(`query ${promql} returned ${r.text.slice(0, 200)}`);
    return Number(v);
  }
}

export const nightlight = defineService({
  name: 'nightlight',
  description: 'metrics ingestion and query (lab: Prometheus with the remote-write receiver)',
  params: Params,
  client: (svc) => new NightlightClient(svc),
});
