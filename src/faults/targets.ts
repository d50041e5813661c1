import type { Node } from '../cluster/node.js';
import { UsageError } from '../core/errors.js';

/**
 * Jepsen's targeters over a list of nodes (usually those running a service): which node a fault
 * hits. A list too short for the pick is bad input naming what was asked.
 */
export function pick(nodes: readonly Node[], which: 'first' | 'second' | 'last', what: string): Node {
  const i = which === 'first' ? 0 : which === 'second' ? 1 : nodes.length - 1;
  const n = nodes[i];
  if (!n || (which === 'second' && nodes.length < 2))
    throw new UsageError(`${what}: needs at least ${which === 'second' ? 2 : 1} node(s), has ${nodes.length}`);
  return n;
}
