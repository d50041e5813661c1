import { InvalidArgumentError } from 'commander';
import { positiveNumber } from '../core/cli-values.js';
import { agentRestartKillsInstances } from '../faults/agent-restart-kills-instances.js';
import { type ClusterEnv, clusterLane } from './lane.js';
import { controlPlaneFormation } from './steps/control-plane-formation.js';
import { fleetAdmin } from './steps/fleet-observe.js';
import { readiness } from './steps/readiness.js';
import { fleetRevalidated, plannedDrainCycle, ROLLOUT_SPECS, type RolloutEnv, workerLossCycle } from './steps/rollout-cycles.js';
import { rolloutRestarts } from './steps/rollout-restarts.js';
import { scopeFixedContract } from './steps/scope-fixed-contract.js';
import { newRunState } from './steps/state.js';

/** Seconds each degraded state is held: positive, at most an hour. */
const holdSeconds = (v: string): number => {
  const n = positiveNumber(v);
  if (n > 3600) throw new InvalidArgumentError('expected at most 3600 seconds');
  return n;
};

const SERVICES = ['iam', 'deployer', 'fleet-scheduler', 'node-agent', 'chainfire', 'flaredb'] as const;

type RolloutCtx = ClusterEnv<(typeof SERVICES)[number]> & RolloutEnv;

/**
 * The rollout soak: the release boundary recorded and checked, one planned drain cycle and one
 * fail-stop worker-loss cycle with each degraded state held and sampled, then the rollout
 * services and the control plane restarted one at a time and the live cluster revalidated.
 */
export const rolloutSoak = clusterLane<RolloutCtx>()({
  name: 'rollout-soak',
  description:
    'the scope-fixed contract checked and recorded; one planned drain cycle and one fail-stop worker-loss cycle on the two workers, each degraded state held (--hold) with every instance asked once a second; deployer, fleet-scheduler, node-agent, chainfire and flaredb restarted one at a time; the stores and the fleet revalidated',
  kind: 'cluster',
  services: SERVICES,
  options: [
    { flags: '--hold <seconds>', description: 'how long each degraded state is held and sampled', parse: holdSeconds, default: 30 },
  ],
  context: (env) => ({ ...env, state: newRunState('rollout-soak'), hold: { ms: (env.options.hold as number) * 1000 }, rollout: {} }),
  steps: [readiness, scopeFixedContract, plannedDrainCycle, workerLossCycle, rolloutRestarts, controlPlaneFormation, fleetRevalidated],
  controls: {
    'agent-restart-kills-instances': {
      description: "make node04's node-agent stop every fleet instance there before each of its starts",
      breaks: 'rollout-restarts',
      fault: ({ services }) => agentRestartKillsInstances(services['node-agent'].nodes()[0]!, services['node-agent'].unit),
    },
  },
  /** Whatever happened: the lane's services removed and no worker left drained. */
  teardown: async ({ services }) => {
    const fleet = services['fleet-scheduler'];
    const who = await fleetAdmin(services.iam);
    for (const name of Object.keys(ROLLOUT_SPECS)) await services.deployer.removeService(name).catch(() => undefined);
    for (const w of await fleet.workers(who).catch(() => [])) if (w.drained) await fleet.undrain(who, w.node).catch(() => undefined);
  },
});
