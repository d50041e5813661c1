import { CheckFailed, errorMessage } from '../../core/errors.js';
import { http } from '../../probes/http.js';
import type { Backend } from '../../services/fiberlb.js';
import type { ServiceIp } from '../../services/prismnet.js';
import type { ClusterEnv, Step } from '../lane.js';
import { countAnswers, drainCycle } from './drain-cycle.js';
import type { RunState } from './state.js';

type Env = ClusterEnv<'prismnet' | 'fiberlb' | 'flashdns' | 'apigateway'> & { state: RunState };

/** The balancer's frontend port on the gateway (the smoke lane's is 10080, k8shost's from 10500). */
const FRONTEND = 10090;
const PER_BACKEND = 4;
/** The lane's zones are named after it (a rerun removes what an interrupted one left). */
const zonePrefix = (lane: string) => `${lane}-`;
const ZONE_SUFFIX = 'ultracloud.test';

/** Request counts per backend in each phase of the drain, one line each (what the seeds' proof shows). */
function drainCountsText(summary: Record<string, unknown>): string {
  const lines = [
    `# requests answered per backend through the balancer; drained: ${String(summary.drained ?? 'none (the step ended before the drain)')}`,
  ];
  for (const phase of ['before', 'duringDrain', 'after'])
    for (const [backend, n] of Object.entries((summary[phase] as Record<string, number> | undefined) ?? {}))
      lines.push(`${phase} ${backend} ${n}`);
  return `${lines.join('\n')}\n`;
}

/**
 * prismnet + flashdns + fiberlb: the VMs on the tenant network (one per worker) each published by
 * a prismnet service IP, a fiberlb load balancer on the gateway over those addresses (reached over
 * the routes fiberlb keeps to them via the network's DHCP worker), and a flashdns name for the
 * balancer. Requests to the name's address reach both VMs; draining one moves all to the other.
 */
export const dnsBalancedVms: Step<Env> = {
  name: 'dns-balanced-vms',
  proves:
    "the VMs on a tenant network, each behind a prismnet service IP, are the backends of a fiberlb load balancer on the gateway whose flashdns name every DNS node answers authoritatively with the balancer's address; requests through it reach both VMs; draining one through the API moves every request to the other, restoring it brings it back",
  needs: ['vm-from-object-image'],
  run: async ({ services: { prismnet, fiberlb, flashdns, apigateway }, state }, step) => {
    const hosted = state.hosted;
    if (!hosted) throw new CheckFailed('vm-from-object-image left no VMs to balance over');
    const { tenant: a, network: net, vms } = hosted;
    for (const z of await flashdns.zones(zonePrefix(state.lane))) await flashdns.deleteZone(z);
    const left = await fiberlb.sweep(a);
    if (left.length) step.log.warn(`removed what an earlier run left behind: ${left.join(', ')}`);
    const zone = `${zonePrefix(state.lane)}${state.runId}.${ZONE_SUFFIX}`;
    const sips: ServiceIp[] = [];
    const summary: Record<string, unknown> = { network: net.id, vms: vms.map((v) => ({ vm: v.id, worker: v.worker, ip: v.nics[0]!.ip })) };
    try {
      step.phase('service ips');
      for (const vm of vms)
        sips.push(await prismnet.createServiceIp(a, net.id, { name: `web-${vm.worker}`, port: 80, backends: [vm.nics[0]!.port] }));
      summary.serviceIps = sips;

      step.phase('balancer');
      const lb = await fiberlb.createLoadBalancer(a, { name: state.lane, port: FRONTEND });
      const pool = await fiberlb.createPool(a, { name: state.lane, loadbalancer: lb.id, healthPath: '/' });
      const backends: Backend[] = [];
      for (const [i, vm] of vms.entries())
        backends.push(await fiberlb.addBackend(a, pool.id, { name: vm.id, address: sips[i]!.ip, port: 80 }));
      Object.assign(summary, { loadbalancer: lb, pool: pool.id, backends });

      step.phase('dns');
      const name = `web.${zone}`;
      await flashdns.createZone(
        zone,
        flashdns.nodes().map((n) => `${n.name}.${zone}`),
      );
      await flashdns.setRecords(zone, name, 'A', [lb.address]);
      const answers = await flashdns.waitForAnswers(apigateway.nodes()[0]!, name, lb.address);
      summary.dns = { name, answers: Object.fromEntries(Object.entries(answers).map(([n, x]) => [n, x.answers])) };
      await step.evidence(
        'network-provider/flashdns-service-authoritative-answer.txt',
        Object.values(answers)
          .map((x) => `;; asked ${x.server} for ${name} A\n${x.text}`)
          .join('\n'),
      );

      // Each VM answers / with its id: the backend (named after its VM) that served the request.
      const url = await fiberlb.frontend(lb);
      const round = () =>
        countAnswers(backends.length * PER_BACKEND, async () => {
          const r = await http('GET', `${url}/`, { timeoutMs: 10_000 }).catch((e: unknown) => ({ status: 0, text: errorMessage(e) }));
          return r.status === 200 ? r.text.trim() : `HTTP ${r.status}`;
        });
      const detail = await drainCycle({ fiberlb, who: a, lb, pool: pool.id, backends, round }, step, summary);
      return `${name} -> ${lb.address}:${lb.port} answered by ${flashdns.nodes().join(', ')}; ${detail}`;
    } finally {
      await step.json('network-provider/fiberlb-drain-summary.json', summary);
      await step.evidence('network-provider/fiberlb-drain-summary.txt', drainCountsText(summary));
      await fiberlb.sweep(a);
      for (const s of sips) await prismnet.deleteServiceIp(a, s.id);
      await flashdns.deleteZone(zone);
    }
  },
};
