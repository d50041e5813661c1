import type { Cluster } from '../../cluster/cluster.js';
import { CheckFailed } from '../../core/errors.js';
import type { Step } from '../lane.js';

/** How long a node of a running cluster may take to become ready; a known failure ends the wait at once. */
const READINESS_TIMEOUT_MS = 300_000;

/** kola's readiness on every node: SSH, the system running, every expected unit active (or the console marker). */
export const readiness: Step<{ cluster: Cluster }> = {
  name: 'readiness',
  proves:
    'every node answers SSH, the system is running, every expected unit is active; fails at once on failed, masked, stopped or restart-looping units, with systemctl --failed and the console tail',
  run: async ({ cluster }, step) => {
    const nodes = cluster.nodes();
    const down = (await Promise.all(nodes.map(async (n) => ((await n.running()) ? null : n.name)))).filter(Boolean);
    if (down.length) throw new CheckFailed(`${down.join(', ')} not running (start the cluster first, or use the fresh- form of the lane)`);
    const ms = await Promise.all(nodes.map((n) => n.waitReady(READINESS_TIMEOUT_MS)));
    await step.json('readiness.json', Object.fromEntries(nodes.map((n, i) => [n.name, { units: n.units(), checkedMs: ms[i] }])));
    return `${nodes.length} nodes ready with ${nodes.reduce((a, n) => a + n.units().length, 0)} expected units active`;
  },
};
