import type { Node } from '../cluster/node.js';
import { waitFor } from '../core/retry.js';
import type { ServiceClient } from '../services/service.js';
import type { Fault } from './fault.js';

/**
 * Freeze a service's main process (SIGSTOP): its unit stays active and its ports accept
 * connections, but it answers nothing, and a lease it keeps lapses (a hung process).
 * Heal: SIGCONT, then `answers(node)` must succeed again.
 */
export function processFrozen(service: ServiceClient<unknown>, node: Node, answers: (node: Node) => Promise<void>): Fault {
  let pid = 0;
  return {
    kind: 'process-frozen',
    name: `process-frozen ${service.unit} on ${node}`,
    targets: [node.name],
    invoke: async () => {
      pid = (await service.process(node)).pid;
      await node.succeed(['kill', '-STOP', String(pid)]);
      return { pid };
    },
    heal: async () => {
      await node.succeed(['kill', '-CONT', String(pid)]);
      await waitFor(`${service.unit} on ${node} answers again`, { timeoutMs: 60_000, intervalMs: 500 }, () => answers(node));
    },
  };
}
