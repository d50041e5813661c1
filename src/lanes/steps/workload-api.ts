import { CheckFailed } from '../../core/errors.js';
import type { WatchEvent } from '../../services/k8shost.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';
import { laneTenants } from './tenants.js';

type Env = ClusterEnv<'iam' | 'k8shost'> & { state: RunState };

/** The namespace the smoke lane's pods live in (the lane's tenants are fixed names: a rerun clears it first). */
const NAMESPACE = 'smoke';
/** What the watch asks the server to bound itself to, and how long past that the client waits. */
const WATCH_SECONDS = 5;
const WATCH_GRACE_MS = 15_000;

const named = (events: WatchEvent[], type: WatchEvent['type'], name: string) =>
  events.some((e) => e.type === type && e.object.metadata?.name === name);

/**
 * k8shost's pod API as a Kubernetes client uses it: a pod created, invisible to another tenant,
 * and a watch (on another API node: the state is in chainfire) that shows it as ADDED in its
 * snapshot, its deletion as DELETED, and ends by itself.
 */
export const workloadApi: Step<Env> = {
  name: 'workload-api',
  proves:
    'a k8shost pod watch is a bounded snapshot stream: the pod the step created comes as ADDED, its deletion as DELETED, and the stream ends by itself after timeoutSeconds; another tenant neither sees nor deletes the pod',
  needs: ['service-health'],
  run: async ({ services: { iam, k8shost }, state }, step) => {
    const { a, b } = await laneTenants(iam, 'smoke');
    for (const left of await k8shost.list(a, 'pods', NAMESPACE)) await k8shost.delete(a, 'pods', NAMESPACE, left.metadata.name);
    const name = `web-${state.runId}`;
    const pod = await k8shost.create(a, 'pods', NAMESPACE, {
      metadata: { name, labels: { app: 'smoke' } },
      spec: { containers: [{ name: 'web', image: 'nginx:1.25', ports: [{ containerPort: 80 }] }] },
    });

    const theirs = await k8shost.list(b, 'pods', NAMESPACE);
    const refused = await k8shost.api.call(b, 'DELETE', `/api/v1/namespaces/${NAMESPACE}/pods/${name}`);
    if (theirs.length || refused.status !== 404)
      throw new CheckFailed(
        `tenant isolation broken: tenant ${b.tenant} lists [${theirs.map((p) => p.metadata.name).join(', ')}] in ${NAMESPACE} and its DELETE of ${name} answered ${refused.status}`,
      );

    const watch = await k8shost.watch(a, 'pods', NAMESPACE, {
      timeoutSeconds: WATCH_SECONDS,
      deadlineMs: WATCH_SECONDS * 1000 + WATCH_GRACE_MS,
      during: async () => void (await k8shost.delete(a, 'pods', NAMESPACE, name)),
    });
    const seen = watch.events.map((e) => `${e.type} ${e.object.metadata?.name ?? e.object.message}`);
    await step.json('workload-api.json', { pod, watch: { ...watch, timeoutSeconds: WATCH_SECONDS } });
    if (!named(watch.events, 'ADDED', name))
      throw new CheckFailed(`the watch on ${watch.node} did not show pod ${name} as ADDED; events: ${seen.join(', ') || 'none'}`);
    if (!named(watch.events, 'DELETED', name))
      throw new CheckFailed(`the watch on ${watch.node} did not show pod ${name}'s deletion; events: ${seen.join(', ')}`);
    if (watch.endedAfterMs < WATCH_SECONDS * 1000 - 500)
      throw new CheckFailed(
        `the watch on ${watch.node} ended after ${(watch.endedAfterMs / 1000).toFixed(1)} s, before its ${WATCH_SECONDS} s; events: ${seen.join(', ')}`,
      );
    return `pod ${name}: watch on ${watch.node} showed ${seen.join(', ')} and ended by itself after ${(watch.endedAfterMs / 1000).toFixed(1)} s; tenant ${b.tenant} saw nothing`;
  },
};
