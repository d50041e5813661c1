import type { Node } from '../../cluster/node.js';
import { CheckFailed } from '../../core/errors.js';
import { StopWaiting, waitFor } from '../../core/retry.js';
import type { StepContext } from '../../core/run-record.js';
import type { FleetPlacement } from '../../services/fleet.js';
import type { IamClient } from '../../services/iam.js';
import type { TenantToken } from '../../services/tenant-api.js';
import type { ClusterEnv } from '../lane.js';

export type FleetEnv = ClusterEnv<'iam' | 'deployer' | 'fleet-scheduler' | 'node-agent'>;
/** The services a step declares, by name: replicas and the port every instance answers on. */
export type FleetSpecs = Readonly<Record<string, { readonly replicas: number; readonly port: number }>>;
/** '<service>/<index>' -> the worker it must run on, or null: pending (no eligible worker). */
export type Want = Record<string, string | null>;
/** Heartbeat lease 10 s, a reconcile, a unit started under TCG; a worker's boot is waited for by its heal. */
const SETTLE_MS = 120_000;

export const placementKey = (p: { service: string; index: number }) => `${p.service}/${p.index}`;

/** The token fleet-scheduler's changes are made with (any iam subject may declare; the lab has no roles). */
export async function fleetAdmin(iam: IamClient): Promise<TenantToken> {
  return { tenant: 'fleet-admin', token: (await iam.issue(iam.nodes()[0]!, { subject: 'fleet-admin', ttlSeconds: 3600 })).token };
}

/**
 * One look at placements and reality: fleet-scheduler's placements of `specs` equal `want`, and on
 * every running worker its node-agent runs exactly the instances placed there, each answering as
 * itself on its port. Anything else is the error, naming each difference.
 */
export async function observeFleet(
  ctx: FleetEnv,
  who: TenantToken,
  specs: FleetSpecs,
  want: Want,
  o: { drained?: Node } = {},
): Promise<FleetPlacement[]> {
  const fleet = ctx.services['fleet-scheduler'];
  const agents = ctx.services['node-agent'];
  const workers = await fleet.workers(who);
  const view = workers.map((w) => `${w.node} alive=${w.alive} drained=${w.drained} runs [${w.instances.join(' ')}]`).join(', ');
  if (o.drained && !workers.find((w) => w.node === o.drained!.name)?.drained)
    throw new StopWaiting(
      `${o.drained}'s drain is gone: fleet-scheduler's workers show it not drained (${view}), though its API accepted the drain`,
    );
  const placements = (await fleet.services(who)).filter((s) => s.name in specs).flatMap((s) => s.placements);
  const wrong: string[] = [];
  for (const [k, node] of Object.entries(want)) {
    const p = placements.find((x) => placementKey(x) === k);
    if (!p) wrong.push(`${k} has no placement`);
    else if (p.node !== node) wrong.push(`${k} is on ${p.node ?? 'no worker (pending)'} (${p.reason}), expected ${node ?? 'pending'}`);
  }
  for (const p of placements) if (!(placementKey(p) in want)) wrong.push(`${placementKey(p)} is placed on ${p.node} but should not exist`);
  for (const node of agents.nodes()) {
    if (!(await node.running())) continue; // powered off: nothing to ask
    const running = (await agents.instances(node)).filter((i) => i.service in specs);
    const expected = Object.entries(want).filter(([, n]) => n === node.name);
    for (const i of running) if (want[placementKey(i)] !== node.name) wrong.push(`${node} still runs ${i.unit} (pid ${i.pid})`);
    for (const [k] of expected) {
      const [service, index] = k.split('/') as [string, string];
      if (!running.some((i) => placementKey(i) === k)) {
        wrong.push(`${node}'s node-agent does not run ${k}`);
        continue;
      }
      const port = specs[service]!.port;
      const a = await agents.ask(node, port).catch((e: Error) => ({ error: e.message }));
      if ('error' in a) wrong.push(`${k} on ${node} does not answer: ${a.error}`);
      else if (a.service !== service || a.index !== Number(index) || a.node !== node.name)
        wrong.push(`${node}:${port} answers as ${a.service}/${a.index} on ${a.node}, expected ${k}`);
    }
  }
  if (wrong.length) throw new CheckFailed(`${wrong.join('; ')} (fleet-scheduler's workers: ${view})`);
  return placements;
}

interface FleetPhase {
  phase: string;
  at: string;
  settledMs: number;
  placements: FleetPlacement[];
}

/** Wait until the fleet matches `want` (within the settle deadline), and record the phase with how long it took. */
export function fleetSettler(ctx: FleetEnv, who: TenantToken, specs: FleetSpecs, step: StepContext) {
  const timeline: FleetPhase[] = [];
  const settle = async (phase: string, want: Want, o: { drained?: Node } = {}): Promise<number> => {
    const t0 = Date.now();
    const placements = await waitFor(
      `${phase}: ${JSON.stringify(want)}`,
      { timeoutMs: SETTLE_MS, intervalMs: 500, maxIntervalMs: 1000, progress: step },
      () => observeFleet(ctx, who, specs, want, o),
    );
    timeline.push({ phase, at: new Date().toISOString(), settledMs: Date.now() - t0, placements });
    return Date.now() - t0;
  };
  return { settle, timeline };
}
