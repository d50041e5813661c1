import { http } from '../../probes/http.js';
import type { Backend } from '../../services/fiberlb.js';
import type { ClusterEnv, Step } from '../lane.js';
import { countAnswers, drainCycle } from './drain-cycle.js';
import { laneTenants } from './tenants.js';

type Env = ClusterEnv<'iam' | 'fiberlb' | 'prismnet'>;

/** The smoke lane's load balancer's frontend port on the gateway. */
const FRONTEND = 10080;
/** Requests sent through the balancer per round: several per backend, so round robin reaches each. */
const PER_BACKEND = 4;

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
    /** One round of requests through the frontend: which node answered each. */
    const round = () =>
      countAnswers(backends.length * PER_BACKEND, async () => {
        const r = await http('GET', `${url}/health`, { timeoutMs: 10_000 });
        return r.status === 200 ? ((r.json as { node?: string }).node ?? '?') : `HTTP ${r.status}`;
      });
    const summary: Record<string, unknown> = { loadbalancer: lb, pool: pool.id, backends };
    try {
      return await drainCycle({ fiberlb, who: a, lb, pool: pool.id, backends, round }, step, summary);
    } finally {
      await step.json('fiberlb-drain-summary.json', summary);
      await fiberlb.sweep(a);
    }
  },
};
