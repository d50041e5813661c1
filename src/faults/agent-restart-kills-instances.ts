import type { Node } from '../cluster/node.js';
import type { Fault } from './fault.js';
import { startHook } from './start-hook.js';

/** A node-agent that is not replace-and-reconcile: every fleet instance on its worker stopped before each of its starts. */
export function agentRestartKillsInstances(node: Node, unit: string): Fault {
  return startHook({
    kind: 'agent-restart-kills-instances',
    name: `agent-restart-kills-instances: ${unit} on ${node} stops every fleet instance there before it starts`,
    node,
    unit,
    command: "/bin/systemctl stop 'fleet-*.service'",
  });
}
