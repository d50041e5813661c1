import { CheckFailed } from '../../core/errors.js';
import { waitFor } from '../../core/retry.js';
import type { StepContext } from '../../core/run-record.js';
import type { Backend, FiberlbClient, LoadBalancer, Pool } from '../../services/fiberlb.js';
import type { TenantToken } from '../../services/tenant-api.js';

/** Requests per backend name in one round sent through a balancer's frontend. */
export type Counts = Record<string, number>;

/** `n` requests, each answered by a name (`ask` says which): how many each name answered. */
export async function countAnswers(n: number, ask: () => Promise<string>): Promise<Counts> {
  const counts: Counts = {};
  for (let i = 0; i < n; i++) {
    const by = await ask();
    counts[by] = (counts[by] ?? 0) + 1;
  }
  return counts;
}

/**
 * A fiberlb drain as its users see it: requests through the frontend reach every backend; one
 * drained through the API gets no new request while haproxy shows it DRAIN, and every other
 * backend still does; restored, it answers again. `round` sends one round of requests and counts
 * them by the backend name that answered. The summary (request counts per phase) is returned
 * whole or, on failure, filled as far as it got.
 */
export async function drainCycle(
  o: { fiberlb: FiberlbClient; who: TenantToken; lb: LoadBalancer; pool: string; backends: Backend[]; round: () => Promise<Counts> },
  step: StepContext,
  summary: Record<string, unknown>,
): Promise<string> {
  const { fiberlb, who, lb, backends, round } = o;
  const live = async (): Promise<Pool['live']> => (await fiberlb.pool(who, o.pool)).live;
  step.phase('spread');
  summary.before = await waitFor(
    `every backend answers through ${lb.name} (:${lb.port} on ${fiberlb.apiNode()})`,
    { timeoutMs: 60_000, intervalMs: 1000, diagnostics: async () => `haproxy: ${JSON.stringify(await live())}` },
    async () => {
      const c = await round();
      if (backends.some((b) => !c[b.name])) throw new Error(`answered by ${JSON.stringify(c)}`);
      return c;
    },
  );

  step.phase('drain');
  const drained = backends[1] ?? backends[0]!;
  await fiberlb.setBackendState(who, drained.id, 'drain');
  await waitFor(`haproxy shows ${drained.name} DRAIN`, { timeoutMs: 30_000, intervalMs: 500 }, async () => {
    const s = (await live())[drained.name]?.status ?? 'missing';
    if (!/DRAIN/.test(s)) throw new Error(`fiberlb's API holds ${drained.name} in drain, but haproxy runs it ${s}`);
  });
  const during = await round();
  summary.drained = drained.name;
  summary.duringDrain = during;
  if (during[drained.name])
    throw new CheckFailed(
      `${during[drained.name]} request(s) still reached the drained backend ${drained.name}: ${JSON.stringify(during)}`,
    );
  const idle = backends.filter((b) => b.id !== drained.id && !during[b.name]);
  if (idle.length)
    throw new CheckFailed(
      `while ${drained.name} drained, ${idle.map((b) => b.name).join(', ')} got no request either: ${JSON.stringify(during)}`,
    );

  step.phase('restore');
  await fiberlb.setBackendState(who, drained.id, 'ready');
  summary.after = await waitFor(`${drained.name} answers again once restored`, { timeoutMs: 30_000, intervalMs: 1000 }, async () => {
    const c = await round();
    if (!c[drained.name]) throw new Error(`answered by ${JSON.stringify(c)}`);
    return c;
  });
  summary.live = await live();
  return `${lb.name} on ${fiberlb.apiNode()}:${lb.port} spread over ${backends.map((b) => b.name).join(', ')} ${JSON.stringify(summary.before)}; ${drained.name} drained: ${JSON.stringify(during)}; restored: ${JSON.stringify(summary.after)}`;
}
