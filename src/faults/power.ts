import type { Node } from '../cluster/node.js';
import type { Fault } from './fault.js';

/** Pull the plug on a node (QMP `quit`); heal boots it again on its disk and waits until it is ready. */
export function powerCut(node: Node, o: { restartTimeoutMs?: number } = {}): Fault {
  return {
    kind: 'power-cut',
    name: `power-cut ${node}`,
    targets: [node.name],
    invoke: () => node.crash(),
    heal: () => node.start(o.restartTimeoutMs),
  };
}
