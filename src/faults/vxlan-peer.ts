import type { Node } from '../cluster/node.js';
import type { WorkerAgentClient } from '../services/worker-agent.js';
import type { Fault } from './fault.js';

const NEMESIS = 'ultracloud-fault-vxlan-peer.service';
/** Deletes the flood entry for $1 from every prismnet VXLAN device, again and again (the agent would restore it). */
const LOOP =
  'while :; do for d in /sys/class/net/pnx*; do [ -e "$d" ] && bridge fdb del 00:00:00:00:00:00 dev "$(basename "$d")" dst "$1" 2>/dev/null; done; sleep 0.2; done';

/**
 * One worker loses its VXLAN flood entry for a peer worker (Jepsen-style nemesis: kept removed
 * while the fault lasts, as a transient unit on the node). Traffic from `node` to VMs on `peer`
 * has nowhere to go. Heal stops the nemesis and restarts the prismnet agent, which puts it back.
 */
export function vxlanPeerRemoved(agent: WorkerAgentClient, node: Node, peer: Node): Fault {
  return {
    kind: 'vxlan-peer-removed',
    name: `vxlan-peer-removed on ${node} for ${peer}`,
    targets: [node.name],
    invoke: async () => {
      // systemd expands $VAR in a unit's command line: $$ passes a literal $ to the shell.
      await node.succeed([
        'systemd-run',
        `--unit=${NEMESIS}`,
        '--collect',
        '/bin/sh',
        '-c',
        LOOP.replaceAll('$', '$$'),
        'nemesis',
        peer.spec.ip,
      ]);
      return { peer: peer.name, peerIp: peer.spec.ip };
    },
    heal: async () => {
      await node.exec(['systemctl', 'stop', NEMESIS]);
      await node.succeed(['systemctl', 'restart', agent.unit]);
      await node.waitForUnit(agent.unit);
    },
  };
}
