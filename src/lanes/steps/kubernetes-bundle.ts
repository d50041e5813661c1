import { CheckFailed, errorMessage } from '../../core/errors.js';
import { waitFor } from '../../core/retry.js';
import type { K8shostClient, KubeObject, Plural, WatchEvent } from '../../services/k8shost.js';
import type { TenantToken } from '../../services/tenant-api.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';
import { laneTenants } from './tenants.js';

type Env = ClusterEnv<'iam' | 'k8shost' | 'prismnet' | 'fiberlb' | 'flashdns' | 'apigateway'> & { state: RunState };

/** The namespace of the step's pod and service (fixed: a rerun deletes what an interrupted one left). */
const NAMESPACE = 'translate';
const CIDR = '10.77.0.0/24';
const NETWORK_PREFIX = 'k8s-';
const TARGET_PORT = 8080;
/** Each watch's bound: the changes made during it take a few seconds. */
const WATCH_SECONDS = 15;
const ANN = {
  port: 'prismnet.ultracloud.io/port',
  pool: 'fiberlb.ultracloud.io/pool',
  loadbalancer: 'fiberlb.ultracloud.io/loadbalancer',
  dns: 'flashdns.ultracloud.io/name',
};
type Translated = KubeObject & { metadata: { annotations?: Record<string, string> }; status?: { podIP?: string } };

/**
 * Watch pods and services in the namespace while `change` runs (started once both streams have
 * answered, so neither misses it); each stream's events as "TYPE kind/name".
 */
async function watchWhile(k8shost: K8shostClient, who: TenantToken, change: () => Promise<void>): Promise<string[]> {
  let arrived = 0;
  let go!: () => void;
  let changed!: () => void;
  const both = new Promise<void>((r) => (go = r));
  const done = new Promise<void>((r) => (changed = r));
  const arrive = () => {
    if (++arrived === 2) go();
    return both;
  };
  const watch = (plural: Plural, during: () => Promise<void>) =>
    k8shost.watch(who, plural, NAMESPACE, { timeoutSeconds: WATCH_SECONDS, deadlineMs: WATCH_SECONDS * 1000 + 15_000, during });
  const named = (plural: Plural, events: WatchEvent[]) =>
    events.map((e) => `${e.type} ${plural}/${e.object.metadata?.name ?? e.object.message}`);
  const [pods, services] = await Promise.all([
    watch('pods', async () => {
      await arrive();
      await change().finally(changed);
    }),
    watch('services', async () => {
      await arrive();
      await done;
    }),
  ]);
  return [...named('pods', pods.events), ...named('services', services.events)];
}

/**
 * The Kubernetes-style hosting bundle: k8shost owns the Kubernetes shapes, and a pod and a service
 * become the platform's own objects, each read back from the service that owns it: a prismnet
 * port (the pod's IP), a fiberlb load balancer whose backend is that IP, a flashdns name every DNS
 * node answers. The watch shows them come and go; deleting them removes all three.
 */
export const kubernetesBundle: Step<Env> = {
  name: 'kubernetes-bundle',
  proves:
    'a k8shost pod on a tenant network becomes a prismnet port holding its podIP; a service selecting it becomes a fiberlb load balancer with that IP as its backend and a flashdns name every DNS node answers with the balancer address; watches of pods and services show both ADDED and then DELETED; deleting them removes the backend, the port, the balancer and the name',
  needs: ['readiness'],
  run: async ({ services: { iam, k8shost, prismnet, fiberlb, flashdns, apigateway }, state }, step) => {
    const { a } = await laneTenants(iam, state.lane);
    /** The namespace's services and pods (k8shost removes what they became), then the step's networks. */
    const clear = async () => {
      for (const s of await k8shost.list(a, 'services', NAMESPACE)) await k8shost.delete(a, 'services', NAMESPACE, s.metadata.name);
      for (const p of await k8shost.list(a, 'pods', NAMESPACE)) await k8shost.delete(a, 'pods', NAMESPACE, p.metadata.name);
      for (const n of (await prismnet.networks(a)).filter((x) => x.name.startsWith(NETWORK_PREFIX))) await prismnet.deleteNetwork(a, n.id);
    };
    await clear();
    const record: Record<string, unknown> = {};
    const net = await prismnet.createNetwork(a, `${NETWORK_PREFIX}${state.runId}`.slice(0, 32), CIDR);
    const app = `shop-${state.runId}`;
    const want = (events: string[], ...expected: string[]) => {
      const missing = expected.filter((e) => !events.includes(e));
      if (missing.length)
        throw new CheckFailed(
          `the watches on ${k8shost.nodes().at(-1)} did not show ${missing.join(', ')}; events: ${events.join(', ') || 'none'}`,
        );
    };
    try {
      step.phase('create');
      let pod: Translated | undefined;
      let svc: Translated | undefined;
      const created = await watchWhile(k8shost, a, async () => {
        pod = (await k8shost.create(a, 'pods', NAMESPACE, {
          metadata: { name: app, labels: { app }, annotations: { 'prismnet.ultracloud.io/network': net.id } },
          spec: { containers: [{ name: 'web', image: 'nginx:1.25', ports: [{ containerPort: TARGET_PORT }] }] },
        })) as Translated;
        svc = (await k8shost.create(a, 'services', NAMESPACE, {
          metadata: { name: app },
          spec: { selector: { app }, ports: [{ port: 80, targetPort: TARGET_PORT }] },
        })) as Translated;
      });
      Object.assign(record, { pod, service: svc, watchCreate: created });
      want(created, `ADDED pods/${app}`, `ADDED services/${app}`);
      if (!pod || !svc) throw new CheckFailed(`pod or service ${app} was not created`);

      step.phase('port');
      const podIP = pod.status?.podIP;
      const portId = pod.metadata.annotations?.[ANN.port];
      const port = portId ? (await prismnet.ports(a)).find((p) => p.id === portId) : undefined;
      if (!podIP || !port || port.ip !== podIP || port.network !== net.id)
        throw new CheckFailed(
          `pod ${app} on network ${net.id}: podIP ${podIP ?? 'none'}, prismnet port ${portId ?? 'none'} ${port ? `(ip ${port.ip}, network ${port.network})` : 'not found in prismnet'}`,
        );

      step.phase('balancer');
      const ann = svc.metadata.annotations ?? {};
      const lb = (await fiberlb.loadBalancers(a)).find((x) => x.id === ann[ANN.loadbalancer]);
      if (!lb) throw new CheckFailed(`service ${app}: fiberlb has no load balancer ${ann[ANN.loadbalancer] ?? '(none named)'}`);
      const pool = await fiberlb.pool(a, ann[ANN.pool] ?? '');
      const backends = pool.backends.map((b) => `${b.address}:${b.port}`);
      record.fiberlb = { loadbalancer: lb, backends };
      if (backends.join() !== `${podIP}:${TARGET_PORT}`)
        throw new CheckFailed(
          `service ${app}: pool ${pool.id} has backends [${backends.join(', ')}], not the pod's ${podIP}:${TARGET_PORT}`,
        );

      step.phase('dns');
      const name = ann[ANN.dns];
      if (!name) throw new CheckFailed(`service ${app} names no DNS record`);
      const client = apigateway.nodes()[0]!;
      const answers = await flashdns.waitForAnswers(client, name, lb.address);
      record.dns = { name, answers: Object.fromEntries(Object.entries(answers).map(([n, x]) => [n, x.answers])) };

      step.phase('delete');
      const deleted = await watchWhile(k8shost, a, async () => {
        await k8shost.delete(a, 'pods', NAMESPACE, app);
        await k8shost.delete(a, 'services', NAMESPACE, app);
      });
      record.watchDelete = deleted;
      want(deleted, `DELETED pods/${app}`, `DELETED services/${app}`);
      if ((await prismnet.ports(a)).some((p) => p.id === portId))
        throw new CheckFailed(`pod ${app} deleted, but its prismnet port ${portId} remains`);
      if ((await fiberlb.loadBalancers(a)).some((x) => x.id === lb.id))
        throw new CheckFailed(`service ${app} deleted, but its fiberlb load balancer ${lb.id} remains`);
      await waitFor(`no flashdns node answers ${name} once the service is gone`, { timeoutMs: 30_000, intervalMs: 500 }, async () => {
        const still = [];
        for (const n of flashdns.nodes()) {
          const x = await flashdns.query(client, n.spec.ip, name);
          if (x.answers.length || x.status.startsWith('NO REPLY')) still.push(`${n}: ${x.status} [${x.answers.join(', ')}]`);
        }
        if (still.length) throw new Error(still.join('; '));
      });
      return `pod ${app} -> prismnet port ${portId} (${podIP}); service -> fiberlb ${lb.id} (:${lb.port}, backend ${podIP}:${TARGET_PORT}) and ${name} answered by ${flashdns.nodes().join(', ')}; watches showed both ADDED and DELETED; all removed with them`;
    } finally {
      await step.json('kubernetes-bundle.json', record);
      await clear().catch((e: unknown) => step.log.warn(`could not clear namespace ${NAMESPACE}: ${errorMessage(e)}`));
    }
  },
};
