import type { Node } from '../../cluster/node.js';
import { CheckFailed, errorMessage } from '../../core/errors.js';
import type { StepContext } from '../../core/run-record.js';
import { seconds } from '../../core/time.js';
import { powerCut } from '../../faults/power.js';
import { workerDrained } from '../../faults/worker-drained.js';
import type { TenantToken } from '../../services/tenant-api.js';
import type { Step } from '../lane.js';
import { type FleetEnv, type FleetSpecs, fleetAdmin, fleetSettler, placementKey, type Want } from './fleet-observe.js';
import type { RunState } from './state.js';

/** Declared in this order: placement is sticky, so the pair takes one worker each and the single the first. */
export const ROLLOUT_SPECS: FleetSpecs = { 'rs-pair': { replicas: 2, port: 20092 }, 'rs-single': { replicas: 1, port: 20091 } };
const SAMPLE_EVERY_MS = 1000;

/** The lane's context: how long each degraded state is held, and the fleet admin token the first cycle makes. */
export type RolloutEnv = FleetEnv & { state: RunState; hold: { ms: number }; rollout: { who?: TenantToken } };

/** One request to one instance during a hold, Jepsen style: when, to what, and what came back. */
export interface Sample {
  atMs: number;
  instance: string;
  node: string;
  ok: boolean;
  answer: string;
}

/** Hold a degraded state for `ms`, asking every instance placed on a worker who it is once a second (judged afterwards). */
async function holdAndSample(ctx: FleetEnv, who: TenantToken, ms: number, step: StepContext): Promise<Sample[]> {
  const fleet = ctx.services['fleet-scheduler'];
  const agents = ctx.services['node-agent'];
  const samples: Sample[] = [];
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    const tick = Date.now();
    const placed = (await fleet.services(who)).filter((s) => s.name in ROLLOUT_SPECS).flatMap((s) => s.placements);
    await Promise.all(
      placed
        .filter((p) => p.node)
        .map(async (p) => {
          const node = agents.nodes().find((n) => n.name === p.node)!;
          const at = Date.now() - t0;
          const answer = await agents
            .ask(node, p.port)
            .then((a) => ({
              ok: a.service === p.service && a.index === p.index && a.node === node.name,
              answer: `${a.service}/${a.index} on ${a.node}`,
            }))
            .catch((e: unknown) => ({ ok: false, answer: errorMessage(e) }));
          samples.push({ atMs: at, instance: placementKey(p), node: node.name, ...answer });
        }),
    );
    await new Promise((r) => setTimeout(r, Math.max(0, SAMPLE_EVERY_MS - (Date.now() - tick))));
  }
  step.log.info(`held for ${seconds(ms)}: ${samples.length} requests, ${samples.filter((s) => !s.ok).length} failed`);
  return samples;
}

/** The hold's verdict: every instance that must serve answered each time it was asked, and was asked at all. */
function judge(what: string, samples: Sample[], mustServe: Want): void {
  const bad: string[] = [];
  for (const [instance, node] of Object.entries(mustServe)) {
    if (!node) continue;
    const mine = samples.filter((s) => s.instance === instance);
    const failed = mine.filter((s) => !s.ok || s.node !== node);
    if (!mine.length) bad.push(`${instance} was never asked (not placed on ${node})`);
    else if (failed.length)
      bad.push(
        `${instance} on ${node} failed ${failed.length} of ${mine.length} requests (first at ${seconds(failed[0]!.atMs)}: ${failed[0]!.answer})`,
      );
  }
  if (bad.length) throw new CheckFailed(`during ${what}: ${bad.join('; ')}`);
}

const workers = (ctx: FleetEnv) => ctx.services['node-agent'].nodes() as [Node, Node];

/**
 * The planned maintenance cycle, once: the lane's services placed, node04 drained through
 * fleet-scheduler (its instances move to node05), the drained state held with every instance
 * asked once a second, the drain lifted and the pair whole again.
 */
export const plannedDrainCycle: Step<RolloutEnv> = {
  name: 'planned-drain-cycle',
  proves:
    'one planned maintenance cycle: with node04 drained, its instances move to node05 and every instance still placed answers each request during the held degraded state; lifting the drain restores the pair',
  needs: ['readiness'],
  run: async (ctx, step) => {
    const fleet = ctx.services['fleet-scheduler'];
    const { deployer } = ctx.services;
    await Promise.all([ctx.services['node-agent'].ready(), deployer.ready()]);
    const [w1, w2] = workers(ctx);
    const who = await fleetAdmin(ctx.services.iam);
    ctx.rollout.who = who;
    const { settle, timeline } = fleetSettler(ctx, who, ROLLOUT_SPECS, step);
    const record: Record<string, unknown> = { timeline };
    try {
      step.phase('place');
      for (const name of Object.keys(ROLLOUT_SPECS)) await deployer.removeService(name); // an interrupted run's
      for (const w of await fleet.workers(who)) if (w.drained) await fleet.undrain(who, w.node);
      for (const [name, spec] of Object.entries(ROLLOUT_SPECS)) await deployer.declareService(name, spec);
      await settle('placed', { 'rs-pair/0': w1.name, 'rs-pair/1': w2.name, 'rs-single/0': w1.name });

      step.phase(`drain ${w1}`);
      const drain = workerDrained(fleet, who, w1.name);
      await ctx.faults.invoke(drain, { cycle: 'planned-drain' });
      const degraded = { 'rs-pair/0': null, 'rs-pair/1': w2.name, 'rs-single/0': w2.name };
      await settle(`${w1} drained`, degraded, { drained: w1 });
      step.phase(`hold ${seconds(ctx.hold.ms)}`);
      const samples = await holdAndSample(ctx, who, ctx.hold.ms, step);
      record.hold = { degraded, ms: ctx.hold.ms, samples };
      judge(`the ${seconds(ctx.hold.ms)} hold with ${w1} drained`, samples, degraded);
      await ctx.faults.heal(drain);
      await settle(`${w1} restored`, { 'rs-pair/0': w1.name, 'rs-pair/1': w2.name, 'rs-single/0': w2.name });
      return `${w1} drained: ${samples.length} requests during the ${seconds(ctx.hold.ms)} hold, all answered; restored`;
    } finally {
      await step.json('planned-drain-cycle.json', record);
    }
  },
};

/**
 * The fail-stop worker-loss cycle, once: node05 powered off, its instances fail over to node04
 * once its heartbeat lease expires, the lost state held with every instance asked once a second,
 * node05 back and its replica restored.
 */
export const workerLossCycle: Step<RolloutEnv> = {
  name: 'worker-loss-cycle',
  proves:
    'one fail-stop worker-loss cycle: with node05 powered off, its instances fail over to node04 and every instance still placed answers each request during the held degraded state; node05 back, the pair is restored',
  needs: ['planned-drain-cycle'],
  run: async (ctx, step) => {
    const [w1, w2] = workers(ctx);
    const who = ctx.rollout.who!;
    const { settle, timeline } = fleetSettler(ctx, who, ROLLOUT_SPECS, step);
    const record: Record<string, unknown> = { timeline };
    try {
      step.phase(`power cut ${w2}`);
      const cut = powerCut(w2);
      await ctx.faults.invoke(cut, { cycle: 'worker-loss' });
      const lost = { 'rs-pair/0': w1.name, 'rs-pair/1': null, 'rs-single/0': w1.name };
      const failoverMs = await settle(`${w2} lost`, lost);
      step.phase(`hold ${seconds(ctx.hold.ms)}`);
      const samples = await holdAndSample(ctx, who, ctx.hold.ms, step);
      record.hold = { degraded: lost, ms: ctx.hold.ms, samples };
      judge(`the ${seconds(ctx.hold.ms)} hold with ${w2} powered off`, samples, lost);
      step.phase(`${w2} back`);
      await ctx.faults.heal(cut);
      await settle(`${w2} back`, afterCycles(ctx));
      return `${w2} lost: failover in ${seconds(failoverMs)}, ${samples.length} requests during the ${seconds(ctx.hold.ms)} hold, all answered; back and restored`;
    } finally {
      await step.json('worker-loss-cycle.json', record);
    }
  },
};

/** Where the lane's instances stand after both cycles (sticky placement: node05's return restored only the pair). */
export const afterCycles = (ctx: FleetEnv): Want => {
  const [w1, w2] = workers(ctx);
  return { 'rs-pair/0': w1.name, 'rs-pair/1': w2.name, 'rs-single/0': w1.name };
};

/** After every restart the instances are where the cycles left them, each answering as itself; then removed. */
export const fleetRevalidated: Step<RolloutEnv> = {
  name: 'fleet-revalidated',
  proves: "after every restart, the lane's instances are where the cycles left them, each answering as itself; removed, none is left",
  needs: ['rollout-restarts'],
  run: async (ctx, step) => {
    const { settle } = fleetSettler(ctx, ctx.rollout.who!, ROLLOUT_SPECS, step);
    const keptMs = await settle('after the restarts', afterCycles(ctx));
    for (const name of Object.keys(ROLLOUT_SPECS)) await ctx.services.deployer.removeService(name);
    await settle('removed', {});
    return `every instance where the cycles left it, answering (settled in ${seconds(keptMs)}); removed`;
  },
};
