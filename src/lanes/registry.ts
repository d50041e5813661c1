import { baremetalIso } from './baremetal-iso.js';
import { coreControlPlaneOpsProof } from './core-control-plane-ops-proof.js';
import { demoVmWebapp } from './demo-vm-webapp.js';
import { durabilityProof } from './durability-proof.js';
import { hardwareCapture, hardwarePreflight, hardwareRun } from './hardware-smoke.js';
import type { AnyLane } from './lane.js';
import { matrix } from './matrix.js';
import { providerVmRealityProof } from './provider-vm-reality-proof.js';
import { rolloutSoak } from './rollout-soak.js';
import { serveVmWebapp } from './serve-vm-webapp.js';
import { smoke } from './smoke.js';

/** Every lane the CLI offers; each cluster lane also gets `fresh-<name>`. Add a lane: define it, list it here. */
export const LANES: readonly AnyLane[] = [
  smoke,
  matrix,
  providerVmRealityProof,
  demoVmWebapp,
  serveVmWebapp,
  durabilityProof,
  rolloutSoak,
  coreControlPlaneOpsProof,
  baremetalIso,
  hardwarePreflight,
  hardwareRun,
  hardwareCapture,
];
