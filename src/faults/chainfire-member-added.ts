import type { Node } from '../cluster/node.js';
import type { ChainfireClient } from '../services/chainfire.js';
import type { Fault } from './fault.js';

/**
 * A live membership change, as an operator's `etcdctl member add` makes one: a learner (it does
 * not count towards quorum, so the cluster stays up) that never starts. Heal: every member at
 * that peer URL removed.
 */
export function chainfireMemberAdded(chainfire: ChainfireClient, node: Node, name: string, peerPort: number): Fault {
  const peer = `http://${node.ip}:${peerPort}`;
  return {
    kind: 'chainfire-member-added',
    name: `chainfire-member-added: learner ${name} at ${peer}, added through ${node}`,
    targets: [node.name],
    invoke: async () => ({ etcdctl: (await node.succeed(['etcdctl', 'member', 'add', name, '--learner', `--peer-urls=${peer}`])).trim() }),
    heal: async () => {
      for (const m of await chainfire.members(node))
        if (m.peerURLs.includes(peer)) await node.succeed(['etcdctl', 'member', 'remove', BigInt(m.id).toString(16)]);
    },
  };
}
