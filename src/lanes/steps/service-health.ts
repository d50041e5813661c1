import { CheckFailed } from '../../core/errors.js';
import { StopWaiting, waitFor } from '../../core/retry.js';
import type { ClusterEnv, Step } from '../lane.js';

type Env = ClusterEnv<'plasmavmc' | 'plasmavmc-agent' | 'prismnet' | 'prismnet-agent'>;

/**
 * The VM-hosting services: both control APIs answer on every control-plane node, each worker's
 * agents are alive, and every API node sees every worker registered (with its accelerator).
 */
export const serviceHealth: Step<Env> = {
  name: 'service-health',
  proves:
    'plasmavmc and prismnet answer /health on every control-plane node; every worker agent is alive and registered (plasmavmc with the accelerator it probed)',
  needs: ['readiness'],
  run: async ({ services }, step) => {
    const { plasmavmc, prismnet } = services;
    const agents = [services['plasmavmc-agent'], services['prismnet-agent']];
    // A live unit is not a live agent: a hung one keeps its unit active and its port open.
    for (const agent of agents)
      for (const node of agent.nodes()) {
        const h = await agent.health(node);
        if (h && !h.ok)
          throw new CheckFailed(`${agent.unit} on ${node} does not answer /health within 5 s (${h.detail}); ${await agent.describe(node)}`);
      }
    const workers = services['plasmavmc-agent'].nodes().map((n) => n.name);
    const seen: Record<string, unknown> = {};
    await waitFor(
      'every worker registered with plasmavmc and prismnet on every API node',
      { timeoutMs: 30_000, intervalMs: 1000 },
      async () => {
        const missing: string[] = [];
        for (const node of plasmavmc.nodes()) {
          const h = await plasmavmc.health(node);
          seen[`plasmavmc@${node}`] = h.workers;
          for (const w of workers.filter((x) => !h.workers.some((y) => y.name === x)))
            missing.push(`plasmavmc on ${node} does not see ${w}`);
        }
        for (const node of prismnet.nodes()) {
          const h = await prismnet.health(node);
          seen[`prismnet@${node}`] = h.agents;
          for (const w of workers.filter((x) => !h.agents.includes(x))) missing.push(`prismnet on ${node} does not see ${w}`);
        }
        if (!missing.length) return;
        // A registration that lapsed because its agent is frozen or dead will not come back by waiting.
        const causes: string[] = [];
        for (const agent of agents)
          for (const w of new Set(missing.map((m) => m.split(' ').at(-1)!))) {
            const node = agent.nodes().find((n) => n.name === w);
            if (!node) continue;
            const p = await agent.process(node);
            if (p.active !== 'active' || p.state === 'T' || p.state === 'Z') causes.push(`${w}: ${await agent.describe(node)}`);
          }
        const msg = `worker(s) not registered: ${missing.join('; ')}`;
        if (causes.length) throw new StopWaiting(`${msg}; ${causes.join('; ')}`);
        throw new Error(msg);
      },
    );
    await step.json('service-health.json', seen);
    const accel = (seen[`plasmavmc@${plasmavmc.nodes()[0]}`] as { name: string; accel: string }[]).map((w) => `${w.name} (${w.accel})`);
    return `plasmavmc and prismnet healthy on ${plasmavmc.nodes().length} API nodes; workers registered: ${accel.join(', ')}`;
  },
};
