import type { Cluster } from '../cluster/cluster.js';
import { CheckFailed } from '../core/errors.js';
import { guestHttp } from './http.js';

/** chainfire in the lab speaks etcd's v3 JSON gateway; keys and values travel base64-encoded. */
const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString();

export class EtcdProbe {
  constructor(
    private readonly cluster: Cluster,
    private readonly port = 2379,
  ) {}

  private async call(node: string, path: string, body: unknown): Promise<Record<string, unknown>> {
    const r = await guestHttp(this.cluster, node, 'POST', `http://127.0.0.1:${this.port}${path}`, { body, timeoutS: 8 });
    if (r.status !== 200 || typeof r.json !== 'object' || r.json === null)
      throw new CheckFailed(`${node}: chainfire ${path} answered ${r.status}: ${r.text.slice(0, 300)}`);
    return r.json as Record<string, unknown>;
  }

  async put(node: string, key: string, value: string): Promise<void> {
    await this.call(node, '/v3/kv/put', { key: b64(key), value: b64(value) });
  }

  /** serializable = answered from this member's local state: proves the value replicated to it. */
  async get(node: string, key: string, serializable = true): Promise<string | null> {
    const r = await this.call(node, '/v3/kv/range', { key: b64(key), serializable });
    const kvs = (r.kvs as { value?: string }[] | undefined) ?? [];
    return kvs[0]?.value !== undefined ? unb64(kvs[0].value) : null;
  }

  async members(node: string): Promise<{ id: string; name: string; clientURLs: string[] }[]> {
    const r = await this.call(node, '/v3/cluster/member/list', {});
    return ((r.members as { ID: string; name: string; clientURLs?: string[] }[]) ?? []).map((m) => ({
      id: m.ID,
      name: m.name,
      clientURLs: m.clientURLs ?? [],
    }));
  }

  /** This member's view: its own id and the leader it follows. */
  async status(node: string): Promise<{ memberId: string; leader: string; raftTerm: string }> {
    const r = await this.call(node, '/v3/maintenance/status', {});
    const header = r.header as { member_id: string };
    return { memberId: header.member_id, leader: String(r.leader), raftTerm: String(r.raftTerm) };
  }
}
