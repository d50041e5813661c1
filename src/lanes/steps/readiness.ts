import type { Cluster } from '../../cluster/cluster.js';
import { checkHealth, renderFindings } from '../../cluster/health.js';
import { CheckFailed } from '../../core/errors.js';
import { allOrAbort } from '../../core/retry.js';
import type { RunRecord } from '../../core/run-record.js';
import type { Step } from '../lane.js';

/** How long a node of a running cluster may take to become ready; a known failure ends the wait at once. */
const READINESS_TIMEOUT_MS = 300_000;

/**
 * kola's readiness on every node: SSH, the system running, every expected unit active (or the
 * console marker); then the node's health: no kernel trouble, room on disk, a sane clock.
 */
export const readiness: Step<{ cluster: Cluster; rec: RunRecord }> = {
  name: 'readiness',
  proves:
    "every node answers SSH, the system is running, every expected unit is active, and the node is healthy (no kernel oops/panic/OOM, disk and inodes not full, clock near the host's); fails at once on failed, masked, stopped or restart-looping units, with systemctl --failed and the console tail",
  run: async ({ cluster, rec }, step) => {
    const nodes = cluster.nodes();
    const down = (await Promise.all(nodes.map(async (n) => ((await n.running()) ? null : n.name)))).filter(Boolean);
    if (down.length) throw new CheckFailed(`${down.join(', ')} not running (start the cluster first, or use the fresh- form of the lane)`);
    const ms = await allOrAbort(nodes, (n, signal) => n.waitReady(READINESS_TIMEOUT_MS, signal));
    const findings = nodes.some((n) => n.marker()) ? [] : await checkHealth(nodes);
    await step.json('readiness.json', {
      nodes: Object.fromEntries(nodes.map((n, i) => [n.name, { units: n.units(), checkedMs: ms[i] }])),
      health: findings,
    });
    for (const f of findings.filter((x) => x.severity === 'warn')) rec.event('warning', `${f.node}: ${f.what}`, { evidence: f.evidence });
    const fails = findings.filter((x) => x.severity === 'fail');
    if (fails.length) throw new CheckFailed(`unhealthy node(s):\n${renderFindings(fails)}`);
    return `${nodes.length} nodes ready with ${nodes.reduce((a, n) => a + n.units().length, 0)} expected units active${findings.length ? `; ${findings.length} health warning(s)` : ''}`;
  },
};
