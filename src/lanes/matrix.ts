import { drainIgnored } from '../faults/drain-ignored.js';
import { imageObjectReplaced } from '../faults/image-object-replaced.js';
import { scrapeJobRemoved } from '../faults/scrape-job-removed.js';
import { unitStopped } from '../faults/units.js';
import { LIGHTNINGSTOR } from '../services/lightningstor.js';
import { type ClusterEnv, clusterLane } from './lane.js';
import { dnsBalancedVms } from './steps/dns-balanced-vms.js';
import { gatewayMeteredUsage } from './steps/gateway-metered-usage.js';
import { kubernetesBundle } from './steps/kubernetes-bundle.js';
import { readiness } from './steps/readiness.js';
import { newRunState, type RunState } from './steps/state.js';
import { laneTenants, sweepLane } from './steps/tenants.js';
import { imageBuckets, vmFromObjectImage } from './steps/vm-from-object-image.js';

const SERVICES = [
  'iam',
  'apigateway',
  'nightlight',
  'creditservice',
  'plasmavmc',
  'plasmavmc-agent',
  'prismnet',
  'coronafs',
  'k8shost',
  'flashdns',
  'fiberlb',
  ...LIGHTNINGSTOR,
] as const;

type MatrixCtx = ClusterEnv<(typeof SERVICES)[number]> & { state: RunState };

/**
 * The matrix lane: the services composed as a tenant uses them together, one scenario per step,
 * on the running cluster (`fresh-matrix` boots one first).
 */
export const matrix = clusterLane<MatrixCtx>()({
  name: 'matrix',
  description:
    'composed scenarios: VMs booted from an image kept in lightningstor (plasmavmc + prismnet + coronafs + lightningstor), those VMs behind a fiberlb balancer with a flashdns name (prismnet + flashdns + fiberlb), the Kubernetes-style bundle (k8shost into prismnet, fiberlb, flashdns), metered usage through apigateway (iam, creditservice, nightlight)',
  kind: 'cluster',
  services: SERVICES,
  context: (env) => ({ ...env, state: newRunState('matrix') }),
  steps: [readiness, vmFromObjectImage, dnsBalancedVms, kubernetesBundle, gatewayMeteredUsage],
  controls: {
    'image-object-replaced': {
      description: "overwrite the initrd object of every image the lane's tenant imports, right after the import",
      breaks: 'vm-from-object-image',
      fault: async ({ services: { iam, plasmavmc, lightningstor }, state }) =>
        imageObjectReplaced(plasmavmc, lightningstor, (await laneTenants(iam, state.lane)).a),
    },
    'drain-ignored': {
      description: "keep every drained haproxy server ready on the gateway, behind fiberlb's API",
      breaks: 'dns-balanced-vms',
      fault: ({ services: { fiberlb } }) => drainIgnored(fiberlb.apiNode()),
    },
    'flashdns-api-down': {
      description: "stop flashdns on the node that serves its API: the service's DNS name cannot be made",
      breaks: 'kubernetes-bundle',
      fault: ({ services: { flashdns } }) => unitStopped(flashdns, flashdns.apiNode()),
    },
    'creditservice-unscraped': {
      description: "remove creditservice's scrape job from nightlight's config and reload it",
      breaks: 'gateway-metered-usage',
      fault: ({ services: { nightlight } }) => scrapeJobRemoved(nightlight, nightlight.node(), 'creditservice'),
    },
  },
  /** The lane's VMs, volumes, ports and networks, and its image buckets, are removed whatever happened. */
  teardown: ({ state, services }) => sweepLane(state.lane, services, imageBuckets(state.lane)),
});
