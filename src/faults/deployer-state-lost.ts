import type { Node } from '../cluster/node.js';
import type { Fault } from './fault.js';
import { startHook } from './start-hook.js';

/** A deployer whose state is not durable: its state file removed before every start, so a restart forgets every pre-registered machine. */
export function deployerStateLost(node: Node, unit: string, stateFile: string): Fault {
  return startHook({
    kind: 'deployer-state-lost',
    name: `deployer-state-lost: ${unit} on ${node} starts without ${stateFile}`,
    node,
    unit,
    command: `/bin/rm -f ${stateFile}`,
  });
}
