import { drainIgnored } from '../faults/drain-ignored.js';
import { LIGHTNINGSTOR } from '../services/lightningstor.js';
import { type ClusterEnv, clusterLane } from './lane.js';
import { dnsBalancedVms } from './steps/dns-balanced-vms.js';
import { readiness } from './steps/readiness.js';
import { newRunState, type RunState } from './steps/state.js';
import { sweepLane } from './steps/tenants.js';
import { imageBuckets, vmFromObjectImage } from './steps/vm-from-object-image.js';
import { vmLiveMigration, volumeUnreachableFromTarget } from './steps/vm-live-migration.js';

const SERVICES = [
  'iam',
  'apigateway',
  'plasmavmc',
  'plasmavmc-agent',
  'prismnet',
  'coronafs',
  'flashdns',
  'fiberlb',
  ...LIGHTNINGSTOR,
] as const;

type ProofCtx = ClusterEnv<(typeof SERVICES)[number]> & { state: RunState };

/**
 * The provider and VM-hosting reality proof on the running cluster: tenant VMs behind an
 * authoritative DNS name and a balancer that drains and restores, and a live migration with its
 * storage and network handoff. Its artifacts are the seeds': `network-provider/` and `vm-hosting/`.
 */
export const providerVmRealityProof = clusterLane<ProofCtx>()({
  name: 'provider-vm-reality-proof',
  description:
    'VMs booted from an image kept in lightningstor; authoritative DNS answers for their balanced service and a fiberlb drain and restore with request counts per backend (network-provider/); a PlasmaVMC live migration with its storage and port handoff and the requests served during it (vm-hosting/)',
  kind: 'cluster',
  services: SERVICES,
  context: (env) => ({ ...env, state: newRunState('provider') }),
  steps: [readiness, vmFromObjectImage, dnsBalancedVms, vmLiveMigration('vm-from-object-image')],
  controls: {
    'drain-ignored': {
      description: "keep every drained haproxy server ready on the gateway, behind fiberlb's API",
      breaks: 'dns-balanced-vms',
      fault: ({ services: { fiberlb } }) => drainIgnored(fiberlb.apiNode()),
    },
    'volume-unreachable-from-target': volumeUnreachableFromTarget,
  },
  teardown: ({ state, services }) => sweepLane(state.lane, services, imageBuckets(state.lane)),
});
