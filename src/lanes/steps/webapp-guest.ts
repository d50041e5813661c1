import { ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Cluster } from '../../cluster/cluster.js';
import { CheckFailed } from '../../core/errors.js';
import { http } from '../../probes/http.js';
import type { Vm } from '../../services/plasmavmc.js';
import type { Network } from '../../services/prismnet.js';

/** The web app's port in the guest, and the object its snapshots are versions of (the lane reads it). */
export const WEBAPP_PORT = 8080;
export const SNAPSHOT_KEY = 'state.json';

/** What the web app answers on /state and /visit. */
export interface WebappState {
  vm: string;
  boot: string;
  visits: number;
  snapshots: number;
}

/**
 * The demo web app as a browser reaches it: through the network's DHCP worker, which holds an
 * address on it (the harness's pooled forward), or at `served`, the host URL serve-vm-webapp left.
 */
export class WebappGuest {
  constructor(
    private readonly cluster: Cluster,
    private readonly network: Network,
    readonly vm: Vm,
    private readonly served?: string,
  ) {}

  async url(): Promise<string> {
    return this.served?.replace(/\/$/, '') ?? this.cluster.node(this.network.dhcpWorker).url(WEBAPP_PORT, this.vm.nics[0]!.ip);
  }

  /** The page a browser opens (GET /): its HTML. */
  async page(): Promise<string> {
    const url = `${await this.url()}/`;
    const r = await http('GET', url, { timeoutMs: 30_000 });
    if (r.status !== 200) throw new CheckFailed(`the web app in vm ${this.vm.id} answered GET / with ${r.status}: ${r.text.slice(0, 300)}`);
    return r.text;
  }

  private async call(method: 'GET' | 'POST', path: string): Promise<WebappState> {
    const r = await http(method, `${await this.url()}${path}`, { timeoutMs: 30_000 });
    if (r.status !== 200)
      throw new CheckFailed(`the web app in vm ${this.vm.id} answered ${method} ${path} with ${r.status}: ${r.text.slice(0, 300)}`);
    return r.json as WebappState;
  }

  state(): Promise<WebappState> {
    return this.call('GET', '/state');
  }

  visit(): Promise<WebappState> {
    return this.call('POST', '/visit');
  }
}

/** The snapshot object's versions in lightningstor, newest first, as S3 lists them. */
export async function snapshotVersions(s3: S3Client, bucket: string): Promise<{ id: string; latest: boolean }[]> {
  const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: SNAPSHOT_KEY }));
  return (listed.Versions ?? [])
    .filter((v) => v.Key === SNAPSHOT_KEY)
    .map((v) => ({ id: v.VersionId ?? 'null', latest: v.IsLatest === true }));
}
