import { snapshotVersionsLost } from '../faults/snapshot-versions-lost.js';
import { LIGHTNINGSTOR } from '../services/lightningstor.js';
import { type ClusterEnv, clusterLane } from './lane.js';
import { readiness } from './steps/readiness.js';
import { newRunState, type RunState } from './steps/state.js';
import { sweepLane } from './steps/tenants.js';
import { vmLiveMigration, volumeUnreachableFromTarget } from './steps/vm-live-migration.js';
import { guestRestart, snapshotBuckets, webappAfterMigration, webappVisits, webappVm } from './steps/webapp.js';

const SERVICES = ['iam', 'plasmavmc', 'plasmavmc-agent', 'prismnet', 'coronafs', 'flaredb-http', ...LIGHTNINGSTOR] as const;

type DemoCtx = ClusterEnv<(typeof SERVICES)[number]> & { state: RunState };

/**
 * The VM web app demo: a PrismNet-attached VM whose guest runs a web app that keeps its visit
 * counter in flaredb and writes JSON snapshots to lightningstor, its config on its coronafs
 * volume; its state survives a guest restart and a live migration to the other worker.
 */
export const demoVmWebapp = clusterLane<DemoCtx>()({
  name: 'demo-vm-webapp',
  description:
    'a web app inside a PrismNet-attached VM (counter in flaredb, JSON snapshots as object versions in lightningstor, config on its coronafs volume) keeps its state across a guest restart and a live migration',
  kind: 'cluster',
  services: SERVICES,
  context: (env) => ({ ...env, state: newRunState('demo') }),
  steps: [readiness, webappVm, webappVisits, guestRestart, vmLiveMigration('webapp-vm'), webappAfterMigration],
  controls: {
    'snapshot-versions-lost': {
      description: "delete every older version in the lane's snapshot buckets as it appears",
      breaks: 'webapp-visits',
      fault: ({ services: { lightningstor }, state }) => snapshotVersionsLost(lightningstor, snapshotBuckets(state.lane)),
    },
    'volume-unreachable-from-target': volumeUnreachableFromTarget,
  },
  teardown: ({ state, services }) => sweepLane(state.lane, services, snapshotBuckets(state.lane)),
});
