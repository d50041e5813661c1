import { CheckFailed } from '../../core/errors.js';
import { waitFor } from '../../core/retry.js';
import { http } from '../../probes/http.js';
import type { Backend, Pool } from '../../services/fiberlb.js';
import type { ClusterEnv, Step } from '../lane.js';
import { laneTenants } from './tenants.js';

type Env = ClusterEnv<'iam' | 'fiberlb' | 'prismnet'>;

/** The smoke lane's load balancer's frontend port on the gateway. */
const FRONTEND = 10080;
/** Requests sent through the balancer per round: several per backend, so round robin reaches each. */
const PER_BACKEND = 4;

type Counts = Record<string, number>;

/**
 * fiberlb as a tenant uses it: a load balancer on the gateway over a pool of real HTTP backends
 * (the prismnet API on every control-plane node: its /health names the node that answered).
 * Requests through the frontend reach every backend; a drain through the API moves every new
 * request to the others while haproxy shows the server DRAIN; restoring brings it back.
 */
export const loadBalancing: Step<Env> = {
  name: 'load-balancing',
  proves:
    'a fiberlb load balancer on the gateway spreads HTTP requests over its pool (the prismnet API on every control-plane node); draining one backend through the API moves every new request to the others while haproxy shows it DRAIN, and restoring it brings it back; the other backends are never touched',
  needs: ['service-health'],
  run: async ({ services: { iam, fiberlb, prismnet } }, step) => {
    const { a } = await laneTenants(iam, 'smoke');
    const left = await fiberlb.sweep(a);
    if (left.length) step.log.warn(`removed what an earlier run left behind: ${left.join(', ')}`);
    const lb = await fiberlb.createLoadBalancer(a, { name: 'smoke', port: FRONTEND });
    const pool = await fiberlb.createPool(a, { name: 'smoke', loadbalancer: lb.id, healthPath: '/health' });
    const backends: Backend[] = [];
    for (const n of prismnet.nodes())
      backends.push(await fiberlb.addBackend(a, pool.id, { name: n.name, address: n.spec.ip, port: prismnet.svc.port('api') }));
    const url = await fiberlb.frontend(lb);
    const live = async (): Promise<Pool['live']> => (await fiberlb.pool(a, pool.id)).live;
    /** Send a round of requests through the frontend; which node answered each. */
    const round = async (): Promise<Counts> => {
      const counts: Counts = {};
      for (let i = 0; i < backends.length * PER_BACKEND; i++) {
        const r = await http('GET', `${url}/health`, { timeoutMs: 10_000 });
        const by = r.status === 200 ? ((r.json as { node?: string }).node ?? '?') : `HTTP ${r.status}`;
        counts[by] = (counts[by] ?? 0) + 1;
      }
      return counts;
    };
    const summary: Record<string, unknown> = { loadbalancer: lb, pool: pool.id, backends };
    try {
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
      await fiberlb.setBackendState(a, drained.id, 'drain');
      await waitFor(`haproxy shows ${drained.name} DRAIN`, { timeoutMs: 30_000, intervalMs: 500 }, async () => {
        const s = (await live())[drained.name]?.status ?? 'missing';
        if (!/DRAIN/.test(s)) throw new Error(`${drained.name} is ${s}`);
      });
      const during = await round();
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
      await fiberlb.setBackendState(a, drained.id, 'ready');
      summary.after = await waitFor(`${drained.name} answers again once restored`, { timeoutMs: 30_000, intervalMs: 1000 }, async () => {
        const c = await round();
        if (!c[drained.name]) throw new Error(`answered by ${JSON.stringify(c)}`);
        return c;
      });
      summary.live = await live();
      return `${lb.name} on ${fiberlb.apiNode()}:${lb.port} spread over ${backends.map((b) => b.name).join(', ')} ${JSON.stringify(summary.before)}; ${drained.name} drained: ${JSON.stringify(during)}; restored: ${JSON.stringify(summary.after)}`;
    } finally {
      await step.json('fiberlb-drain-summary.json', summary);
      await fiberlb.sweep(a);
    }
  },
};
