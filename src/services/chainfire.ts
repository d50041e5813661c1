import { z } from 'zod';
import type { Node } from '../cluster/node.js';
import { CheckFailed } from '../core/errors.js';
import { http } from '../probes/http.js';
import { defineService, ServiceClient } from './service.js';

/** chainfire in the lab is etcd 3.4; lanes speak its v3 JSON gateway (keys and values base64). */
const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString();

const Params = z.strictObject({
  /** Members the cluster must have; default: one per node the contract places chainfire on. */
  members: z.number().int().min(1).optional(),
});
type Params = z.output<typeof Params>;

export interface RangeAnswer {
  revision: number;
  kvs: { key: string; value: string; modRevision: number; leased: boolean }[];
}

export interface Member {
  id: string;
  name: string;
  clientURLs: string[];
  peerURLs: string[];
  isLearner: boolean;
}

export class ChainfireClient extends ServiceClient<Params> {
  expectedMembers(): number {
    return this.svc.params.members ?? this.nodes().length;
  }

  private async call(node: Node, path: string, body: unknown): Promise<Record<string, unknown>> {
    const r = await http('POST', `${await node.url(this.svc.port('client'))}${path}`, { body, timeoutMs: 8000 });
    if (r.status !== 200 || typeof r.json !== 'object' || r.json === null)
      throw new CheckFailed(`${node}: chainfire ${path} answered ${r.status}: ${r.text.slice(0, 300)}`);
    return r.json as Record<string, unknown>;
  }

  async put(node: Node, key: string, value: string): Promise<void> {
    await this.call(node, '/v3/kv/put', { key: b64(key), value: b64(value) });
  }

  /** serializable = answered from this member's local state: proves the value replicated to it. */
  async get(node: Node, key: string, o: { serializable?: boolean } = {}): Promise<string | null> {
    const r = await this.call(node, '/v3/kv/range', { key: b64(key), serializable: o.serializable ?? true });
    const kvs = (r.kvs as { value?: string }[] | undefined) ?? [];
    return kvs[0]?.value !== undefined ? unb64(kvs[0].value) : null;
  }

  /**
   * Every key under `prefix` as the server at `url` (a member, or any etcd such as a restored
   * copy) holds it, at `revision` when given; with the store revision the answer was read at.
   */
  async range(url: string, prefix: string, o: { revision?: number } = {}): Promise<RangeAnswer> {
    const end = Buffer.from(prefix);
    end[end.length - 1]! += 1;
    const r = await http('POST', `${url}/v3/kv/range`, {
      body: { key: b64(prefix), range_end: end.toString('base64'), ...(o.revision ? { revision: String(o.revision) } : {}) },
      timeoutMs: 20_000,
    });
    if (r.status !== 200) throw new CheckFailed(`chainfire at ${url}: range ${prefix} answered ${r.status}: ${r.text.slice(0, 300)}`);
    const j = r.json as { header?: { revision?: string }; kvs?: { key: string; value?: string; mod_revision?: string; lease?: string }[] };
    return {
      revision: Number(j.header?.revision ?? 0),
      kvs: (j.kvs ?? []).map((kv) => ({
        key: unb64(kv.key),
        value: unb64(kv.value ?? ''),
        modRevision: Number(kv.mod_revision ?? 0),
        leased: kv.lease !== undefined && kv.lease !== '0',
      })),
    };
  }

  /** The peer URL the member on `node` advertises (what the cluster's fixed membership lists). */
  peerUrl(node: Node): string {
    return `http://${node.ip}:${this.svc.port('peer')}`;
  }

  /** The base URL of the member on `node`, through the pooled SSH connection. */
  memberUrl(node: Node): Promise<string> {
    return node.url(this.svc.port('client'));
  }

  /** The member list as `node` sees it (members that are down are still listed). */
  async members(node: Node): Promise<Member[]> {
    const r = await this.call(node, '/v3/cluster/member/list', {});
    type Listed = { ID: string; name?: string; clientURLs?: string[]; peerURLs?: string[]; isLearner?: boolean };
    return ((r.members as Listed[]) ?? []).map((m) => ({
      id: m.ID,
      name: m.name ?? '', // a member added but never started has no name yet
      clientURLs: m.clientURLs ?? [],
      peerURLs: m.peerURLs ?? [],
      isLearner: m.isLearner === true,
    }));
  }

  /** This member's view: its own id, the leader it follows ('0' when it has none), the raft term. */
  async status(node: Node): Promise<{ memberId: string; leader: string; raftTerm: string }> {
    const r = await this.call(node, '/v3/maintenance/status', {});
    // The JSON gateway omits zero values: no `leader` field means no leader (mid-election).
    const header = r.header as { member_id?: string };
    return { memberId: String(header.member_id ?? '0'), leader: String(r.leader ?? '0'), raftTerm: String(r.raftTerm ?? '0') };
  }

  /** The node whose member id is `memberId` (member names are node names). */
  async nodeOf(memberId: string, asking: Node): Promise<Node> {
    const m = (await this.members(asking)).find((x) => x.id === memberId);
    const n = m && this.nodes().find((x) => x.name === m.name);
    if (!n) throw new CheckFailed(`chainfire member ${memberId} is not one of ${this.nodes().join(', ')} (asked ${asking})`);
    return n;
  }

  /** The leader as `asking` sees it, as a Node. */
  async leader(asking: Node): Promise<{ node: Node; memberId: string; term: string }> {
    const s = await this.status(asking);
    if (s.leader === '0') throw new CheckFailed(`${asking} follows no chainfire leader (term ${s.raftTerm})`);
    return { node: await this.nodeOf(s.leader, asking), memberId: s.leader, term: s.raftTerm };
  }
}

export const chainfire = defineService({
  name: 'chainfire',
  description: 'replicated coordination store (lab: etcd 3.4, v3 JSON gateway)',
  params: Params,
  client: (svc) => new ChainfireClient(svc),
});
