import type { Node } from '../cluster/node.js';
import { waitFor } from '../core/retry.js';
import type { WorkerAgentClient } from '../services/worker-agent.js';
import type { Fault } from './fault.js';

/**
 * Freeze a worker agent (SIGSTOP to its main process): its unit stays active and its port open,
 * but it answers nothing and its chainfire lease lapses. Heal: SIGCONT, and it answers again.
 */
export function agentFrozen(agent: WorkerAgentClient, node: Node): Fault {
  let pid = 0;
  return {
    kind: 'process-frozen',
    name: `process-frozen ${agent.unit} on ${node}`,
    targets: [node.name],
    invoke: async () => {
      pid = (await agent.process(node)).pid;
      await node.succeed(['kill', '-STOP', String(pid)]);
      return { pid };
    },
    heal: async () => {
      await node.succeed(['kill', '-CONT', String(pid)]);
      await waitFor(`${agent.unit} on ${node} answers again`, { timeoutMs: 60_000, intervalMs: 500 }, async () => {
        const h = await agent.health(node);
        if (h && !h.ok) throw new Error(h.detail);
      });
    },
  };
}
