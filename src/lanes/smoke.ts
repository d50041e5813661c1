import { iamWrongKey } from '../faults/signing-key.js';
import { pick } from '../faults/targets.js';
import { unitMasked, unitStopped } from '../faults/units.js';
import { type ClusterEnv, clusterLane } from './lane.js';
import { controlPlaneFormation } from './steps/control-plane-formation.js';
import { externalEntrypoints } from './steps/external-entrypoints.js';
import { iamTokens } from './steps/iam-tokens.js';
import { leaderPowerCut } from './steps/leader-power-cut.js';
import { protocolSurfaces } from './steps/protocol-surfaces.js';
import { readiness } from './steps/readiness.js';
import { replicatedState } from './steps/replicated-state.js';
import { newRunState, type RunState } from './steps/state.js';

type SmokeCtx = ClusterEnv<'chainfire' | 'flaredb' | 'flaredb-http' | 'iam' | 'apigateway' | 'nightlight' | 'creditservice'> & {
  state: RunState;
};

/** The smoke lane: the cluster formed, answers on every surface, replicates, authenticates, and survives losing its leader. */
export const smoke = clusterLane<SmokeCtx>()({
  name: 'smoke',
  description: 'readiness, control-plane formation, protocol surfaces, replication, iam tokens, external entrypoints, a leader power cut',
  kind: 'cluster',
  services: ['chainfire', 'flaredb', 'flaredb-http', 'iam', 'apigateway', 'nightlight', 'creditservice'],
  context: (env) => ({ ...env, state: newRunState() }),
  steps: [readiness, controlPlaneFormation, protocolSurfaces, replicatedState, iamTokens, externalEntrypoints, leaderPowerCut],
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
  },
});
