import type { Node } from '../../cluster/node.js';
import { CheckFailed } from '../../core/errors.js';
import { StopWaiting, waitFor } from '../../core/retry.js';
import { seconds } from '../../core/time.js';
import { powerCut } from '../../faults/power.js';
import { workerDrained } from '../../faults/worker-drained.js';
import type { FleetPlacement } from '../../services/fleet.js';
import type { TenantToken } from '../../services/tenant-api.js';
import type { ClusterEnv, Step } from '../lane.js';

type Env = ClusterEnv<'iam' | 'fleet-scheduler' | 'node-agent'>;

/** The services the step declares: a single replica that must move, a pair that must keep one replica per worker. */
const SINGLE = 'sdf-single';
const PAIR = 'sdf-pair';
/** Declared in this order: placement is sticky, so the pair takes one worker each and the single the first. */
const SPECS = { [PAIR]: { replicas: 2, port: 20082 }, [SINGLE]: { replicas: 1, port: 20081 } } as const;
/** '<service>/<index>' -> the worker it must run on, or null: pending (no eligible worker). */
type Want = Record<string, string | null>;
/** Heartbeat lease 10 s, a reconcile, a unit started under TCG; a worker's boot is waited for by its heal. */
const SETTLE_MS = 120_000;

const key = (p: { service: string; index: number }) => `${p.service}/${p.index}`;

/**
 * One look at placements and reality: fleet-scheduler's placements equal `want`, and on every
 * running worker its node-agent runs exactly the instances placed there, each answering as
 * itself on its port. Anything else is the error, naming each difference.
 */
async function observe(ctx: Env, who: TenantToken, want: Want, o: { drained?: Node }): Promise<FleetPlacement[]> {
  const fleet = ctx.services['fleet-scheduler'];
  const agents = ctx.services['node-agent'];
  const workers = await fleet.workers(who);
  const view = workers.map((w) => `${w.node} alive=${w.alive} drained=${w.drained} runs [${w.instances.join(' ')}]`).join(', ');
  if (o.drained && !workers.find((w) => w.node === o.drained!.name)?.drained)
    throw new StopWaiting(
      `${o.drained}'s drain is gone: fleet-scheduler's workers show it not drained (${view}), though its API accepted the drain`,
    );
  const placements = (await fleet.services(who)).filter((s) => s.name in SPECS).flatMap((s) => s.placements);
  const wrong: string[] = [];
  for (const [k, node] of Object.entries(want)) {
    const p = placements.find((x) => key(x) === k);
    if (!p) wrong.push(`${k} has no placement`);
    else if (p.node !== node) wrong.push(`${k} is on ${p.node ?? 'no worker (pending)'} (${p.reason}), expected ${node ?? 'pending'}`);
  }
  for (const p of placements) if (!(key(p) in want)) wrong.push(`${key(p)} is placed on ${p.node} but should not exist`);
  for (const node of agents.nodes()) {
    if (!(await node.running())) continue; // powered off: nothing to ask
    const running = (await agents.instances(node)).filter((i) => i.service in SPECS);
    const expected = Object.entries(want).filter(([, n]) => n === node.name);
    for (const i of running) if (want[key(i)] !== node.name) wrong.push(`${node} still runs ${i.unit} (pid ${i.pid})`);
    for (const [k] of expected) {
      const [service, index] = k.split('/') as [keyof typeof SPECS, string];
      if (!running.some((i) => key(i) === k)) {
        wrong.push(`${node}'s node-agent does not run ${k}`);
        continue;
      }
      const a = await agents.ask(node, SPECS[service].port).catch((e: Error) => ({ error: e.message }));
      if ('error' in a) wrong.push(`${k} on ${node} does not answer: ${a.error}`);
      else if (a.service !== service || a.index !== Number(index) || a.node !== node.name)
        wrong.push(`${node}:${SPECS[service].port} answers as ${a.service}/${a.index} on ${a.node}, expected ${k}`);
    }
  }
  if (wrong.length) throw new CheckFailed(`${wrong.join('; ')} (fleet-scheduler's workers: ${view})`);
  return placements;
}

/**
 * fleet-scheduler's drain, failover and replica restoration on the two workers (the seeds' fresh-smoke
 * proof of deployer -> fleet-scheduler -> node-agent): every transition is a fault or a heal in
 * the run's history, and the placements after each are in the evidence with how long they took.
 */
export const schedulerDrainFailover: Step<Env> = {
  name: 'scheduler-drain-failover',
  proves:
    "fleet-scheduler places a one-replica and a two-replica service on the workers, and node-agent runs each as a unit that answers as itself; draining node04 moves the single to node05 and leaves the pair one replica; lifting the drain restores it; a power cut of node05 fails the single over to node04 once node05's heartbeat lease expires; node05 back restores the pair; nothing moves needlessly",
  needs: ['readiness'],
  run: async (ctx, step) => {
    const { iam } = ctx.services;
    const { faults } = ctx;
    const fleet = ctx.services['fleet-scheduler'];
    const agents = ctx.services['node-agent'];
    await Promise.all([fleet.ready(), agents.ready()]); // deferred: they start once the boot is done
    const [w1, w2] = agents.nodes() as [Node, Node];
    const who = { tenant: 'fleet-admin', token: (await iam.issue(iam.nodes()[0]!, { subject: 'fleet-admin', ttlSeconds: 3600 })).token };
    const timeline: { phase: string; at: string; settledMs: number; placements: FleetPlacement[] }[] = [];
    const settle = async (phase: string, want: Want, o: { drained?: Node } = {}) => {
      const t0 = Date.now();
      const placements = await waitFor(
        `${phase}: ${JSON.stringify(want)}`,
        { timeoutMs: SETTLE_MS, intervalMs: 500, maxIntervalMs: 1000, progress: step },
        () => observe(ctx, who, want, o),
      );
      timeline.push({ phase, at: new Date().toISOString(), settledMs: Date.now() - t0, placements });
      return Date.now() - t0;
    };

    step.phase('clean');
    for (const name of Object.keys(SPECS)) await fleet.remove(who, name); // an interrupted run's
    for (const w of await fleet.workers(who)) if (w.drained) await fleet.undrain(who, w.node);
    await settle('no instance left', {});

    const ms: Record<string, number> = {};
    try {
      step.phase('place');
      for (const [name, spec] of Object.entries(SPECS)) await fleet.declare(who, name, spec);
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
      for (const name of Object.keys(SPECS)) await fleet.remove(who, name);
      ms.removed = await settle('removed', {});
    } finally {
      // Also after a failure: the instances must not outlive the run, and the evidence says how far it got.
      for (const name of Object.keys(SPECS)) await fleet.remove(who, name).catch(() => undefined);
      await step.json('scheduler-drain-failover.json', { leader: await fleet.leader(who).catch(() => null), ms, timeline });
    }
    return `drain ${w1}: moved in ${seconds(ms.drain!)}, restored in ${seconds(ms.restore!)}; power cut ${w2}: failover in ${seconds(ms.failover!)}, back after its boot (${seconds(ms.boot!)}) in ${seconds(ms.return!)}`;
  },
};
