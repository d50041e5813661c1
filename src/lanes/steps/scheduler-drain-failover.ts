import type { Node } from '../../cluster/node.js';
import { seconds } from '../../core/time.js';
import { powerCut } from '../../faults/power.js';
import { workerDrained } from '../../faults/worker-drained.js';
import type { Step } from '../lane.js';
import { type FleetEnv, fleetAdmin, fleetSettler } from './fleet-observe.js';

/** The services the step declares: a single replica that must move, a pair that must keep one replica per worker. */
const SINGLE = 'sdf-single';
const PAIR = 'sdf-pair';
/** Declared in this order: placement is sticky, so the pair takes one worker each and the single the first. */
const SPECS = { [PAIR]: { replicas: 2, port: 20082 }, [SINGLE]: { replicas: 1, port: 20081 } } as const;
/**
 * fleet-scheduler's drain, failover and replica restoration on the two workers (the seeds' fresh-smoke
 * proof of deployer -> fleet-scheduler -> node-agent): every transition is a fault or a heal in
 * the run's history, and the placements after each are in the evidence with how long they took.
 */
export const schedulerDrainFailover: Step<FleetEnv> = {
  name: 'scheduler-drain-failover',
  proves:
    "services declared through the deployer (published to chainfire) are placed by fleet-scheduler: a one-replica and a two-replica service on the workers, and node-agent runs each as a unit that answers as itself; draining node04 moves the single to node05 and leaves the pair one replica; lifting the drain restores it; a power cut of node05 fails the single over to node04 once node05's heartbeat lease expires; node05 back restores the pair; nothing moves needlessly",
  needs: ['readiness'],
  run: async (ctx, step) => {
    const { iam, deployer } = ctx.services;
    const { faults } = ctx;
    const fleet = ctx.services['fleet-scheduler'];
    const agents = ctx.services['node-agent'];
    await Promise.all([fleet.ready(), agents.ready(), deployer.ready()]); // node-agent and the deployer are deferred: they start once the boot is done
    const [w1, w2] = agents.nodes() as [Node, Node];
    const who = await fleetAdmin(iam);
    const { settle, timeline } = fleetSettler(ctx, who, SPECS, step);

    step.phase('clean');
    for (const name of Object.keys(SPECS)) await deployer.removeService(name); // an interrupted run's
    for (const w of await fleet.workers(who)) if (w.drained) await fleet.undrain(who, w.node);
    await settle('no instance left', {});

    const ms: Record<string, number> = {};
    try {
      step.phase('place');
      for (const [name, spec] of Object.entries(SPECS)) await deployer.declareService(name, spec);
      ms.placed = await settle('placed', { [`${PAIR}/0`]: w1.name, [`${PAIR}/1`]: w2.name, [`${SINGLE}/0`]: w1.name });

      step.phase(`drain ${w1}`);
      const drain = workerDrained(fleet, who, w1.name);
      await faults.invoke(drain);
      const drained = { [`${PAIR}/0`]: null, [`${PAIR}/1`]: w2.name, [`${SINGLE}/0`]: w2.name };
      ms.drain = await settle(`${w1} drained`, drained, { drained: w1 });
      await faults.heal(drain);
      ms.restore = await settle(`${w1} restored`, { [`${PAIR}/0`]: w1.name, [`${PAIR}/1`]: w2.name, [`${SINGLE}/0`]: w2.name });

      step.phase(`power cut ${w2}`);
      const cut = powerCut(w2);
      await faults.invoke(cut);
      ms.failover = await settle(`${w2} power cut`, { [`${PAIR}/0`]: w1.name, [`${PAIR}/1`]: null, [`${SINGLE}/0`]: w1.name });
      const t0 = Date.now();
      await faults.heal(cut); // boots it again on its disk and waits until it is ready
      ms.boot = Date.now() - t0;
      ms.return = await settle(`${w2} back`, { [`${PAIR}/0`]: w1.name, [`${PAIR}/1`]: w2.name, [`${SINGLE}/0`]: w1.name });

      step.phase('remove');
      for (const name of Object.keys(SPECS)) await deployer.removeService(name);
      ms.removed = await settle('removed', {});
    } finally {
      // Also after a failure: the instances must not outlive the run, and the evidence says how far it got.
      for (const name of Object.keys(SPECS)) await deployer.removeService(name).catch(() => undefined);
      await step.json('scheduler-drain-failover.json', { leader: await fleet.leader(who).catch(() => null), ms, timeline });
    }
    return `drain ${w1}: moved in ${seconds(ms.drain!)}, restored in ${seconds(ms.restore!)}; power cut ${w2}: failover in ${seconds(ms.failover!)}, back after its boot (${seconds(ms.boot!)}) in ${seconds(ms.return!)}`;
  },
};
