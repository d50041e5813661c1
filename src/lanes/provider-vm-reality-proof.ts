import { CheckFailed } from '../core/errors.js';
import { drainIgnored } from '../faults/drain-ignored.js';
import { volumeUnreachable } from '../faults/volume-unreachable.js';
import { type ClusterEnv, clusterLane } from './lane.js';
import { dnsBalancedVms } from './steps/dns-balanced-vms.js';
import { readiness } from './steps/readiness.js';
import { newRunState, type RunState } from './steps/state.js';
import { sweepVmLane, vmFromObjectImage } from './steps/vm-from-object-image.js';
import { vmLiveMigration } from './steps/vm-live-migration.js';

type ProofCtx = ClusterEnv<
  | 'iam'
  | 'apigateway'
  | 'plasmavmc'
  | 'plasmavmc-agent'
  | 'prismnet'
  | 'coronafs'
  | 'flashdns'
  | 'fiberlb'
  | 'lightningstor'
  | 'lightningstor-object'
  | 'lightningstor-container'
  | 'lightningstor-account'
> & {
  state: RunState;
};

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
  services: [
    'iam',
    'apigateway',
    'plasmavmc',
    'plasmavmc-agent',
    'prismnet',
    'coronafs',
    'flashdns',
    'fiberlb',
    'lightningstor',
    'lightningstor-object',
    'lightningstor-container',
    'lightningstor-account',
  ],
  context: (env) => ({ ...env, state: newRunState('provider') }),
  steps: [readiness, vmFromObjectImage, dnsBalancedVms, vmLiveMigration],
  controls: {
    'drain-ignored': {
      description: "keep every drained haproxy server ready on the gateway, behind fiberlb's API",
      breaks: 'dns-balanced-vms',
      fault: ({ services: { fiberlb } }) => drainIgnored(fiberlb.apiNode()),
    },
    'volume-unreachable-from-target': {
      description: "drop the migration target's connections to the migrating VM's volume export",
      breaks: 'vm-live-migration',
      fault: ({ cluster, state }) => {
        const vms = state.hosted?.vms;
        if (!vms?.length) throw new CheckFailed('no VM to take the volume of (vm-from-object-image runs first)');
        return volumeUnreachable(cluster.node(vms.at(-1)!.worker), vms[0]!.disks[0]!);
      },
    },
  },
  teardown: ({ state, services }) => sweepVmLane(state.lane, services),
});
