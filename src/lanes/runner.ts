import { Cluster } from '../cluster/cluster.js';
import { saveNodeEvidence } from '../cluster/evidence.js';
import { checkHealth } from '../cluster/health.js';
import { checkCleanable, lockState, stopCluster } from '../cluster/lifecycle.js';
import type { ClusterPaths } from '../config/paths.js';
import type { LoadedProfile } from '../config/profile.js';
import { EXIT_CHECK_FAILED, EXIT_OK } from '../core/errors.js';
import { StateLock } from '../core/lock.js';
import { log } from '../core/log.js';
import type { RunResult } from '../core/result.js';
import { RunRecord } from '../core/run-record.js';
import { onCleanup } from '../core/shutdown.js';
import { ensureWorkRoot } from '../core/work-root.js';
import { FaultHistory } from '../faults/fault.js';
import { hostFacts } from '../host/facts.js';
import { bindServices, type ServiceClients } from '../services/index.js';
import { accelVerdict } from '../vm/accel-probe.js';
import type { AnyLane, Control, LaneEnv, Step } from './lane.js';
import { planSteps } from './plan.js';
import { type BootOptions, boot, type FreshCtx, image, snapshot } from './steps/fresh.js';
import { renderFailure, renderWarnings } from './summary.js';

export interface Invocation {
  lane: AnyLane;
  /** The command line as typed (recorded in result.json). */
  commandLine: string;
  profile: LoadedProfile;
  paths: ClusterPaths;
  workRoot: string;
  /** The lane's own options. */
  options: Record<string, unknown>;
  only?: string[];
  skip?: string[];
  inject?: string[];
  /** `fresh-<lane>`: how to boot, and what to leave running afterwards. */
  fresh?: BootOptions & { keep: boolean; keepOnFailure: boolean };
}

export interface Outcome {
  code: number;
  dir: string;
  result: RunResult;
  text: string;
  data: Record<string, unknown>;
}

/** Run an async function once, however many paths (normal exit, a signal's cleanup) ask for it. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | null = null;
  return () => {
    p ??= fn();
    return p;
  };
}

/**
 * The one runner (kola's harness): it, not the lane, owns the lock, the run record, the fresh
 * boot and the stop, the negative controls, the final heal, the node evidence, the summary on
 * stderr and the exit code. Bad input (step names, controls, a profile without a needed service,
 * the lane's own `prepare`) is refused before anything changes.
 */
export async function runLane(inv: Invocation): Promise<Outcome> {
  const { lane, fresh } = inv;
  const plan = planSteps(lane, inv);
  const staticEnv = { profile: inv.profile, paths: inv.paths, workRoot: inv.workRoot, options: inv.options };
  const prepared = await lane.prepare?.(staticEnv);

  let cluster: Cluster | undefined;
  let services: Partial<ServiceClients> = {};
  if (lane.kind === 'cluster') {
    if (fresh) await checkCleanable(inv.paths); // fresh- cleans first: refuse before anything is locked or stopped
    const c = await Cluster.open(inv.profile, inv.paths, log.child({ lane: lane.name }));
    cluster = c;
    onCleanup('close ssh connections', () => c.close());
    services = bindServices(c, lane.services);
    await lockState(c, inv.commandLine);
  } else if (lane.lockDir) {
    await ensureWorkRoot(staticEnv.workRoot);
    const lock = await StateLock.acquire(lane.lockDir(staticEnv), inv.commandLine);
    onCleanup(`release ${lane.name} lock`, () => lock.release());
  }

  let failed: string | null = null;
  /** Every step ran (none failed, no signal): the lane's teardown and a lane that leaves something running see it. */
  let completed = false;
  const passed = () => completed && failed === null;
  const leaves = lane.kind === 'cluster' ? lane.leavesRunning : undefined;
  /**
   * Whether a fresh cluster stays up: --keep always; --keep-on-failure when a step failed (not when
   * interrupted); a lane that leaves something running when it passed.
   */
  const keepFor = (reason = 'exit') =>
    fresh !== undefined &&
    (fresh.keep || (fresh.keepOnFailure && failed !== null && reason === 'exit') || (leaves !== undefined && passed()));
  if (fresh && cluster) {
    const c = cluster;
    // Registered before the record exists: on a signal it runs after the heal and the node evidence (cleanups unwind LIFO).
    onCleanup('stop the fresh cluster', async (reason) => {
      if (keepFor(reason)) {
        const why = fresh.keep ? '' : failed ? ' because the lane failed (--keep-on-failure)' : ` for ${leaves}`;
        c.log.warn(`cluster left running${why}: ultracloud status | ssh <node> | stop`);
        return;
      }
      await stopCluster(c, { powerdownMs: 0 }); // a fresh cluster is thrown away: no shutdown to wait for
    });
  }

  const verdict = fresh ? await accelVerdict() : undefined;
  const rec = await RunRecord.create({
    workRoot: inv.workRoot,
    lane: lane.name,
    command: inv.commandLine,
    profile: inv.profile.name,
    host: hostFacts(verdict?.chosen),
  });
  const faults = new FaultHistory(rec);
  const env: LaneEnv = { rec, log: rec.log, faults, ...staticEnv };
  // The runner only passes contexts through; each lane's context is typed where the lane is defined.
  const ctx: unknown =
    lane.kind === 'cluster'
      ? await lane.context({ ...env, cluster: cluster!, services: services as ServiceClients, prepared })
      : await lane.context({ ...env, prepared });

  const saveEvidence = once(async () => {
    if (!cluster) return;
    const files = await saveNodeEvidence(cluster, rec.dir, { journalTimeoutMs: 15_000 });
    rec.event('info', 'node evidence saved', { files: files.length });
  });
  /** After the lane: whatever went wrong on a node that no step named (an oops during a fault, a full disk) is a warning. */
  const scanHealth = async () => {
    if (!cluster || cluster.nodes().some((n) => n.marker())) return;
    for (const f of await checkHealth(await cluster.running())) rec.event('warning', `${f.node}: ${f.what}`, { evidence: f.evidence });
  };
  const teardown = once(async () => lane.teardown?.(ctx, passed()));
  // Heal for real unless the cluster is about to be stopped (which heals everything, minutes sooner).
  const finalHeal = once(() => faults.healAll({ byStop: fresh !== undefined && !keepFor() }));
  const disposers = [
    onCleanup('save node evidence', saveEvidence),
    onCleanup('lane teardown', teardown),
    onCleanup('final heal', finalHeal),
  ];

  const freshCtx: FreshCtx | undefined =
    fresh && cluster
      ? { cluster, rec, boot: { accel: fresh.accel, waveTimeoutMs: fresh.waveTimeoutMs, coldBoot: fresh.coldBoot } }
      : undefined;
  const steps: { step: Step<unknown>; ctx: unknown; skip: string | null }[] = [
    ...(freshCtx ? [image, boot, snapshot].map((s) => ({ step: s as Step<unknown>, ctx: freshCtx, skip: null })) : []),
    ...lane.steps.map((s) => ({ step: s as Step<unknown>, ctx, skip: plan.find((p) => p.name === s.name)?.skip ?? null })),
  ];
  const controlsBefore = (name: string) =>
    (inv.inject ?? [])
      .map((n) => [n, lane.controls[n]!] as [string, Control<unknown, string>])
      .filter(([, c]) => (c.invokeBefore ?? c.breaks) === name);

  try {
    for (const { step, ctx: stepCtx, skip } of steps) {
      if (skip) {
        rec.skip(step.name, skip, 'request');
        continue;
      }
      if (failed) {
        rec.skip(step.name, `skipped: step ${failed} failed`, 'failure');
        continue;
      }
      try {
        await rec.step(step.name, async (sc) => {
          for (const [name, control] of controlsBefore(step.name))
            await faults.invoke(await control.fault(ctx), {
              negativeControl: name,
              breaks: control.breaks,
              description: control.description,
            });
          return step.run(stepCtx, sc);
        });
      } catch {
        failed = step.name;
      }
    }
    completed = true;
  } finally {
    await finalHeal();
    await scanHealth().catch((err: unknown) => rec.event('warning', 'node health not checked', { error: String(err) }));
    await teardown().catch((err: unknown) => rec.event('warning', 'lane teardown failed', { error: String(err) }));
    await saveEvidence().catch((err: unknown) => rec.event('warning', 'node evidence not saved', { error: String(err) }));
    for (const d of disposers) d();
  }
  const result = await rec.finish();
  if (!result.success) process.stderr.write(renderFailure(result, rec.dir, cluster?.nodes().map((n) => n.name) ?? []));
  else process.stderr.write(renderWarnings(result));
  const report = lane.report?.(ctx, result.success) ?? {};
  const verdictText = result.success ? 'PASSED' : 'FAILED';
  return {
    code: result.success ? EXIT_OK : EXIT_CHECK_FAILED,
    dir: rec.dir,
    result,
    text: report.text ?? `${inv.commandLine.split(' ')[0]}: ${verdictText}; evidence in ${rec.dir}`,
    data: { ...result, dir: rec.dir, ...report.data },
  };
}
