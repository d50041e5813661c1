import type { Logger } from 'pino';
import type { ClusterPaths } from '../config/paths.js';
import type { LoadedProfile } from '../config/profile.js';
import { UsageError } from '../core/errors.js';
import { nodeRecords, nodesInState } from '../vm/state.js';
import { Node } from './node.js';
import { ensureHarnessKey } from './ssh-key.js';
import { SshPool } from './ssh-pool.js';

/**
 * A handle on one cluster (profile + state dir): its Nodes, and one pooled SSH connection per
 * node that every command and forwarded port shares. Lanes, services and faults reach guests
 * only through Nodes.
 */
export class Cluster {
  readonly pool = new SshPool();
  private readonly byName: Map<string, Node>;

  private constructor(
    readonly profile: LoadedProfile,
    readonly paths: ClusterPaths,
    readonly key: { privateKey: string; publicKey: string },
    readonly log: Logger,
  ) {
    this.byName = new Map(profile.nodes.map((spec) => [spec.name, new Node(this, spec)]));
  }

  static async open(profile: LoadedProfile, paths: ClusterPaths, log: Logger): Promise<Cluster> {
    return new Cluster(profile, paths, await ensureHarnessKey(paths.workRoot, paths.keys), log);
  }

  /** The node of this name; an unknown name is bad input (exit 2) naming the nodes there are. */
  node(name: string): Node {
    const n = this.byName.get(name);
    if (!n) throw new UsageError(`unknown node "${name}" (profile ${this.profile.name} has: ${[...this.byName.keys()].join(', ')})`);
    return n;
  }

  /** A handle for a node dir another profile left in this state dir: enough to find and stop its QEMU. */
  orphan(name: string): Node {
    return new Node(this, { name, roles: ['unknown'], ip: '0.0.0.0', dependsOn: [], forwards: [] });
  }

  /** Every node of the profile, in profile order. */
  nodes(): Node[] {
    return [...this.byName.values()];
  }

  withRole(role: string): Node[] {
    return this.nodes().filter((n) => role === '*' || n.hasRole(role));
  }

  /** 1-based position in the profile: stable MACs derive from it. */
  indexOf(name: string): number {
    return this.profile.nodes.findIndex((x) => x.name === name) + 1;
  }

  /** What a node learns at boot over fw_cfg: who it is, its peers and roles, the harness key. */
  nodeEnv(node: Node): Record<string, string> {
    const nodes = this.profile.nodes;
    return {
      NODE_NAME: node.name,
      CLUSTER_IP: node.ip,
      CLUSTER_PREFIX: String(this.profile.network.prefixLength),
      ROLES: node.roles.join(' '),
      CLUSTER_PEERS: nodes.map((n) => `${n.name}=${n.ip}`).join(' '),
      CLUSTER_ROLES: nodes.map((n) => `${n.name}=${n.roles.join(',')}`).join(' '),
      SSH_AUTHORIZED_KEY: this.key.publicKey,
    };
  }

  /** Host ports recorded by any node of this state dir (so a new launch never reuses them). */
  async recordedPorts(): Promise<Set<number>> {
    return new Set((await nodeRecords(this.paths.state)).flatMap((r) => Object.values(r.ports).map((p) => p.host)));
  }

  /** Names of node dirs in the state dir (whatever profile made them): what `stop` must consider. */
  nodesInState(): Promise<string[]> {
    return nodesInState(this.paths.state);
  }

  /** Nodes of the profile whose recorded QEMU runs. */
  async running(): Promise<Node[]> {
    const up = await Promise.all(this.nodes().map(async (n) => ((await n.running()) ? n : null)));
    return up.filter((n): n is Node => n !== null);
  }

  close(): void {
    this.pool.close();
  }
}
