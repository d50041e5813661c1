import { dnsRecordDeleted } from '../faults/dns-record-deleted.js';
import { drainLost } from '../faults/drain-lost.js';
import { objectDataLost } from '../faults/object-data-lost.js';
import { processFrozen } from '../faults/process-frozen.js';
import { iamWrongKey } from '../faults/signing-key.js';
import { pick } from '../faults/targets.js';
import { unitMasked, unitStopped } from '../faults/units.js';
import { silentVmImage } from '../faults/vm-image.js';
import { vxlanPeerRemoved } from '../faults/vxlan-peer.js';
import { LIGHTNINGSTOR } from '../services/lightningstor.js';
import { type ClusterEnv, clusterLane } from './lane.js';
import { controlPlaneFormation } from './steps/control-plane-formation.js';
import { dnsRecords } from './steps/dns-records.js';
import { externalEntrypoints } from './steps/external-entrypoints.js';
import { iamTokens } from './steps/iam-tokens.js';
import { leaderPowerCut } from './steps/leader-power-cut.js';
import { loadBalancing } from './steps/load-balancing.js';
import { protocolSurfaces } from './steps/protocol-surfaces.js';
import { readiness } from './steps/readiness.js';
import { replicatedState } from './steps/replicated-state.js';
import { schedulerDrainFailover } from './steps/scheduler-drain-failover.js';
import { serviceHealth } from './steps/service-health.js';
import { newRunState, type RunState } from './steps/state.js';
import { storageApi } from './steps/storage-api.js';
import { laneTenants, sweepTenant } from './steps/tenants.js';
import { vmNetworkBinding } from './steps/vm-network-binding.js';
import { workerVirtualization } from './steps/worker-virtualization.js';
import { workloadApi } from './steps/workload-api.js';

const SERVICES = [
  'chainfire',
  'flaredb',
  'flaredb-http',
  'iam',
  'apigateway',
  'nightlight',
  'creditservice',
  'plasmavmc',
  'plasmavmc-agent',
  'prismnet',
  'prismnet-agent',
  'coronafs',
  'coronafs-agent',
  'k8shost',
  'flashdns',
  'fiberlb',
  'deployer',
  'fleet-scheduler',
  'node-agent',
  ...LIGHTNINGSTOR,
] as const;

type SmokeCtx = ClusterEnv<(typeof SERVICES)[number]> & { state: RunState };

/**
 * The smoke lane: the cluster formed, answers on every surface, replicates, authenticates, hosts
 * VMs on its workers on tenant networks, and survives losing its leader.
 */
export const smoke = clusterLane<SmokeCtx>()({
  name: 'smoke',
  description:
    'readiness, control-plane formation, protocol surfaces, replication, iam tokens, external entrypoints, authoritative DNS, S3 object versions, pod API watches, load balancing with a drain, fleet-scheduler drain and failover, VM hosting on the workers, a leader power cut',
  kind: 'cluster',
  services: SERVICES,
  context: (env) => ({ ...env, state: newRunState('smoke') }),
  steps: [
    readiness,
    controlPlaneFormation,
    protocolSurfaces,
    replicatedState,
    iamTokens,
    externalEntrypoints,
    dnsRecords,
    storageApi,
    serviceHealth,
    workloadApi,
    loadBalancing,
    schedulerDrainFailover,
    workerVirtualization,
    vmNetworkBinding,
    leaderPowerCut,
  ],
  controls: {
    'unit-masked': {
      description: 'mask and stop iam on the second iam node',
      breaks: 'readiness',
      fault: ({ services: { iam } }) => unitMasked(iam, pick(iam.nodes(), 'second', 'unit-masked')),
    },
    'flaredb-standby-stopped': {
      description: 'stop flaredb on the last standby',
      breaks: 'control-plane-formation',
      fault: ({ services: { flaredb } }) => unitStopped(flaredb, pick(flaredb.standbys(), 'last', 'flaredb-standby-stopped')),
    },
    'iam-wrong-key': {
      description: 'make the last iam node verify with a key of its own',
      breaks: 'iam-tokens',
      fault: ({ services: { iam } }) => iamWrongKey(iam, pick(iam.nodes(), 'last', 'iam-wrong-key')),
    },
    'plasmavmc-agent-stopped': {
      description: 'stop (SIGSTOP) the plasmavmc agent on the last worker: its unit stays active, its registration lapses',
      breaks: 'service-health',
      fault: ({ services }) => {
        const agent = services['plasmavmc-agent'];
        return processFrozen(agent, pick(agent.nodes(), 'last', 'plasmavmc-agent-stopped'), async (node) => {
          const h = await agent.health(node);
          if (h && !h.ok) throw new Error(h.detail);
        });
      },
    },
    'flashdns-record-deleted': {
      description: "delete every new A record behind flashdns's API, in the flaredb primary's zone tables",
      breaks: 'dns-records',
      fault: ({ services: { flashdns } }) => dnsRecordDeleted(flashdns.apiNode()),
    },
    'object-versions-lost': {
      description: "stop the first worker's Swift object server and delete every object file on the last as it lands",
      breaks: 'storage-api',
      fault: ({ services }) => {
        const objects = services['lightningstor-object'];
        return objectDataLost(
          objects,
          pick(objects.nodes(), 'first', 'object-versions-lost'),
          pick(objects.nodes(), 'last', 'object-versions-lost'),
        );
      },
    },
    'k8shost-watch-stalled': {
      description: 'freeze (SIGSTOP) the control APIs on the last k8shost node, where the step watches: the stream never ends',
      breaks: 'workload-api',
      fault: ({ services: { k8shost } }) =>
        processFrozen(k8shost, pick(k8shost.nodes(), 'last', 'k8shost-watch-stalled'), async (node) => void (await k8shost.health(node))),
    },
    'vxlan-peer-removed': {
      description: "remove the first worker's VXLAN flood entry for the last worker (kept removed while the fault lasts)",
      breaks: 'vm-network-binding',
      fault: ({ services }) => {
        const agent = services['prismnet-agent'];
        const [first, last] = [pick(agent.nodes(), 'first', 'vxlan-peer-removed'), pick(agent.nodes(), 'last', 'vxlan-peer-removed')];
        return vxlanPeerRemoved(agent, first, last);
      },
    },
    'scheduler-drain-lost': {
      description: 'a nemesis on the first control-plane node deletes every fleet drain from chainfire as it appears',
      breaks: 'scheduler-drain-failover',
      fault: ({ services }) => drainLost(pick(services['fleet-scheduler'].nodes(), 'first', 'scheduler-drain-lost')),
    },
    'vm-image-silent': {
      description: 'boot VMs from an image whose userspace never prints its ready marker',
      breaks: 'worker-virtualization',
      fault: (ctx) =>
        silentVmImage(ctx.services['plasmavmc-agent'].nodes(), ctx.services.plasmavmc.params.image, (image) => {
          ctx.state.vmImage = image ?? undefined;
        }),
    },
  },
  /** VMs, volumes, ports and networks a failed step left are removed (the lane's tenants are fixed names). */
  teardown: async ({ state, services: { iam, plasmavmc, prismnet, coronafs } }) => {
    if (!state.hosted) return;
    const t = await laneTenants(iam, state.lane);
    for (const who of [t.a, t.b]) await sweepTenant(who, plasmavmc, prismnet, coronafs);
  },
});
