import { z } from 'zod';
import type { Node } from '../cluster/node.js';
import { CheckFailed } from '../core/errors.js';
import { waitFor } from '../core/retry.js';
import { http } from '../probes/http.js';
import { defineService, ServiceClient } from './service.js';

const Params = z.strictObject({
  /** Where the API node keeps the API key (root-readable; the harness reads it over SSH). */
  apiKeyFile: z.string().startsWith('/').default('/etc/ultracloud/flashdns/api.key'),
  /** PowerDNS's name for the one server it serves. */
  server: z.string().default('localhost'),
});
type Params = z.output<typeof Params>;

/** What a DNS client saw: the response code, whether the answer was authoritative, the answer records' data. */
export interface DnsAnswer {
  server: string;
  status: string;
  authoritative: boolean;
  answers: string[];
  /** kdig's output, for the evidence. */
  text: string;
}

/** A record set as the API shows it. */
export interface RRset {
  name: string;
  type: string;
  ttl: number;
  records: { content: string; disabled: boolean }[];
}

const fqdn = (name: string) => (name.endsWith('.') ? name : `${name}.`);

/**
 * flashdns: PowerDNS authoritative on every control-plane node, zones in flaredb; its HTTP API
 * (PowerDNS's own, with an API key) on the first node, the flaredb primary, where writes go.
 * Queries are real DNS queries made with kdig from a node (argv, no shell).
 */
export class FlashdnsClient extends ServiceClient<Params> {
  private key: string | undefined;

  apiNode(): Node {
    return this.nodes()[0]!;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T; text: string }> {
    const node = this.apiNode();
    this.key ??= (await node.succeed(['cat', this.svc.params.apiKeyFile])).trim();
    const r = await http(method, `${await node.url(this.svc.port('api'))}/api/v1/servers/${this.svc.params.server}${path}`, {
      body,
      headers: { 'x-api-key': this.key },
    });
    return { status: r.status, json: r.json as T, text: r.text };
  }

  private async ok<T>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.call<T>(method, path, body);
    if (r.status >= 300)
      throw new CheckFailed(`flashdns API on ${this.apiNode()} refused ${method} ${path}: ${r.status} ${r.text.slice(0, 300)}`);
    return r.json;
  }

  /** A native zone (replicated by flaredb, not by DNS transfers), with its SOA and NS made by PowerDNS. */
  createZone(zone: string, nameservers: string[]): Promise<unknown> {
    return this.ok('POST', '/zones', { name: fqdn(zone), kind: 'Native', nameservers: nameservers.map(fqdn) });
  }

  /** Replace one record set (name, type) with these contents. */
  setRecords(zone: string, name: string, type: string, contents: string[], ttl = 60): Promise<unknown> {
    return this.ok('PATCH', `/zones/${fqdn(zone)}`, {
      rrsets: [{ name: fqdn(name), type, ttl, changetype: 'REPLACE', records: contents.map((content) => ({ content, disabled: false })) }],
    });
  }

  /** The zone's record sets as the API reads them back; null when the zone does not exist. */
  async rrsets(zone: string): Promise<RRset[] | null> {
    const r = await this.call<{ rrsets: RRset[] }>('GET', `/zones/${fqdn(zone)}`);
    if (r.status === 404 || r.status === 422) return null;
    if (r.status !== 200) throw new CheckFailed(`flashdns API on ${this.apiNode()}: GET zone ${zone}: ${r.status} ${r.text.slice(0, 300)}`);
    return r.json.rrsets;
  }

  /** Zones whose names start with `prefix` (what an interrupted run may have left). */
  async zones(prefix: string): Promise<string[]> {
    return (await this.ok<{ name: string }[]>('GET', '/zones')).map((z) => z.name).filter((n) => n.startsWith(prefix));
  }

  async deleteZone(zone: string): Promise<void> {
    const r = await this.call('DELETE', `/zones/${fqdn(zone)}`);
    if (r.status !== 204 && r.status !== 404)
      throw new CheckFailed(`flashdns API on ${this.apiNode()}: DELETE zone ${zone}: ${r.status} ${r.text.slice(0, 300)}`);
  }

  /** Wait until every flashdns node answers `name` A `address` authoritatively, asked from `from`; each node's answer. */
  async waitForAnswers(from: Node, name: string, address: string, timeoutMs = 30_000): Promise<Record<string, DnsAnswer>> {
    const answers: Record<string, DnsAnswer> = {};
    await waitFor(
      `every flashdns node answers ${name} A ${address} authoritatively (asked from ${from})`,
      { timeoutMs, intervalMs: 500, maxIntervalMs: 2000 },
      async () => {
        for (const n of this.nodes()) answers[n.name] = await this.query(from, n.spec.ip, name);
        const wrong = Object.entries(answers).filter(([, x]) => !x.authoritative || x.answers.join() !== address);
        if (wrong.length) throw new Error(wrong.map(([n, x]) => `${n}: ${x.status} [${x.answers.join(', ')}]`).join('; '));
      },
    );
    return answers;
  }

  /** Ask `server` (an address) for `name`/`type`, from `from`, as any DNS client does: one UDP query, no recursion. */
  async query(from: Node, server: string, name: string, type = 'A', klass: 'IN' | 'CH' = 'IN'): Promise<DnsAnswer> {
    const r = await from.exec(['kdig', `@${server}`, '+norecurse', '+time=2', '+retry=0', fqdn(name), type, klass]);
    return parseKdig(server, type, `${r.stdout}${r.stderr}`, r.code);
  }
}

/** kdig's text output: the status, the `aa` flag, and the data of the answer records of `type`. */
export function parseKdig(server: string, type: string, text: string, exitCode: number): DnsAnswer {
  const status = /status: (\w+)/.exec(text)?.[1] ?? (exitCode === 0 ? 'UNKNOWN' : `NO REPLY (kdig exit ${exitCode})`);
  const flags = /;; Flags: ([^;]*);/.exec(text)?.[1] ?? '';
  const section = /;; ANSWER SECTION:\n([\s\S]*?)(?:\n\n|\n;;|$)/.exec(text)?.[1] ?? '';
  const answers = section
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 5 && f[3] === type)
    .map((f) => f.slice(4).join(' '));
  return { server, status, authoritative: /\baa\b/.test(flags), answers, text };
}

export const flashdns = defineService({
  name: 'flashdns',
  description: 'authoritative DNS (lab: PowerDNS on flaredb through its PostgreSQL backend; HTTP API on the primary)',
  params: Params,
  client: (svc) => new FlashdnsClient(svc),
});
