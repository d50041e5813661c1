import type { Node } from '../../cluster/node.js';
import { CheckFailed } from '../../core/errors.js';
import { StopWaiting, waitFor } from '../../core/retry.js';
import type { WorkerAgentClient } from '../../services/worker-agent.js';
import type { ClusterEnv, Step } from '../lane.js';

type Env = ClusterEnv<
  | 'plasmavmc'
  | 'plasmavmc-agent'
  | 'prismnet'
  | 'prismnet-agent'
  | 'coronafs'
  | 'coronafs-agent'
  | 'k8shost'
  | 'fiberlb'
  | 'flashdns'
  | 'lightningstor'
  | 'lightningstor-object'
  | 'lightningstor-container'
  | 'lightningstor-account'
>;

/** A control API and the agents that register with it: which agents an API node sees. */
interface Registry {
  service: string;
  apiNodes: Node[];
  agent: WorkerAgentClient;
  seen: (apiNode: Node) => Promise<{ names: string[]; raw: unknown }>;
}

/**
 * The control APIs: each answers on every control-plane node; for VM hosting, every agent is
 * alive and every API node sees every agent registered (plasmavmc's with its accelerator).
 */
export const serviceHealth: Step<Env> = {
  name: 'service-health',
  proves:
    "plasmavmc, prismnet, coronafs and k8shost answer /health on every control-plane node, flashdns answers a DNS query on each, fiberlb (its API and haproxy) and lightningstor's S3 proxy on the gateway, and every Swift node holds identical rings; every agent is alive and registered with its API (plasmavmc workers with the accelerator they probed)",
  needs: ['readiness'],
  run: async ({ services }, step) => {
    const { plasmavmc, prismnet, coronafs, k8shost, fiberlb, flashdns, lightningstor } = services;
    const registries: Registry[] = [
      {
        service: 'plasmavmc',
        apiNodes: plasmavmc.nodes(),
        agent: services['plasmavmc-agent'],
        seen: async (n) => {
          const h = await plasmavmc.health(n);
          return { names: h.workers.map((w) => w.name), raw: h.workers };
        },
      },
      {
        service: 'prismnet',
        apiNodes: prismnet.nodes(),
        agent: services['prismnet-agent'],
        seen: async (n) => {
          const h = await prismnet.health(n);
          return { names: h.agents, raw: h.agents };
        },
      },
      {
        service: 'coronafs',
        apiNodes: coronafs.nodes(),
        agent: services['coronafs-agent'],
        seen: async (n) => {
          const h = await coronafs.health(n);
          return { names: h.agents.map((a) => a.node), raw: h.agents };
        },
      },
    ];
    // A live unit is not a live agent: a hung one keeps its unit active and its port open.
    for (const { agent } of registries)
      for (const node of agent.nodes()) {
        const h = await agent.health(node);
        if (h && !h.ok)
          throw new CheckFailed(`${agent.unit} on ${node} does not answer /health within 5 s (${h.detail}); ${await agent.describe(node)}`);
      }
    const seen: Record<string, unknown> = {};
    for (const node of k8shost.nodes()) seen[`k8shost@${node}`] = await k8shost.health(node);
    for (const node of fiberlb.nodes()) seen[`fiberlb@${node}`] = await fiberlb.health(node);
    // lightningstor: the proxy answers, and every Swift node holds the same rings (built from the topology).
    const swift = [lightningstor, services['lightningstor-object'], services['lightningstor-container'], services['lightningstor-account']];
    await Promise.all(swift.map((s) => s.ready()));
    seen[`lightningstor@${lightningstor.proxyNode()}`] = await lightningstor.health();
    const swiftNodes = swift.flatMap((s) => s.nodes());
    const rings: Record<string, string> = {};
    for (const n of [...new Set(swiftNodes)])
      rings[n.name] = (
        await n.succeed(['md5sum', '/etc/swift/account.ring.gz', '/etc/swift/container.ring.gz', '/etc/swift/object.ring.gz'])
      )
        .replace(/ +\S+/g, '')
        .trim();
    seen['lightningstor rings (md5: account, container, object)'] = rings;
    if (new Set(Object.values(rings)).size > 1)
      throw new CheckFailed(
        `lightningstor's rings differ between nodes: ${Object.entries(rings)
          .map(([n, r]) => `${n} ${r.split('\n').join(' ')}`)
          .join('; ')}`,
      );
    // flashdns answers a real query on every node (asked from the node itself: its UDP/53, not a bound socket).
    for (const node of flashdns.nodes()) {
      const a = await flashdns.query(node, '127.0.0.1', 'version.bind', 'TXT', 'CH');
      if (a.status !== 'NOERROR' || !a.answers.length)
        throw new CheckFailed(`flashdns on ${node} did not answer version.bind: ${a.status}; ${await flashdns.describe(node)}`);
      seen[`flashdns@${node}`] = a.answers[0];
    }
    await waitFor('every agent registered with its API on every API node', { timeoutMs: 30_000, intervalMs: 1000 }, async () => {
      const missing: { registry: Registry; node: Node; text: string }[] = [];
      for (const r of registries)
        for (const apiNode of r.apiNodes) {
          const got = await r.seen(apiNode);
          seen[`${r.service}@${apiNode}`] = got.raw;
          for (const node of r.agent.nodes().filter((n) => !got.names.includes(n.name)))
            missing.push({ registry: r, node, text: `${r.service} on ${apiNode} does not see ${node}` });
        }
      if (!missing.length) return;
      // A registration that lapsed because its agent is frozen or dead will not come back by waiting.
      const causes: string[] = [];
      for (const m of missing.filter((x, i) => missing.findIndex((y) => y.registry === x.registry && y.node === x.node) === i)) {
        const p = await m.registry.agent.process(m.node);
        if (p.active !== 'active' || p.state === 'T' || p.state === 'Z')
          causes.push(`${m.node}: ${await m.registry.agent.describe(m.node)}`);
      }
      const msg = `not registered: ${missing.map((m) => m.text).join('; ')}`;
      if (causes.length) throw new StopWaiting(`${msg}; ${causes.join('; ')}`);
      throw new Error(msg);
    });
    await step.json('service-health.json', seen);
    const accel = (seen[`plasmavmc@${plasmavmc.nodes()[0]}`] as { name: string; accel: string }[]).map((w) => `${w.name} (${w.accel})`);
    return `plasmavmc, prismnet, coronafs, k8shost and flashdns healthy on ${plasmavmc.nodes().length} control-plane nodes, fiberlb on ${fiberlb.nodes().join(', ')}; agents registered; workers: ${accel.join(', ')}`;
  },
};
