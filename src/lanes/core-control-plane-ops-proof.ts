import { chainfireMemberAdded } from '../faults/chainfire-member-added.js';
import { flaredbDdlGuardDisabled } from '../faults/flaredb-ddl-guard-disabled.js';
import { iamCrlNotDeployed } from '../faults/iam-crl-not-deployed.js';
import { iamRetiredKeyKept } from '../faults/iam-retired-key-kept.js';
import { type ClusterEnv, clusterLane } from './lane.js';
import { chainfireFixedMembership, INTRUDER } from './steps/chainfire-fixed-membership.js';
import { DDL_GUARD, flaredbAdditiveMigration } from './steps/flaredb-additive-migration.js';
import { iamBootstrapHardening } from './steps/iam-bootstrap-hardening.js';
import { iamCredentialRotation } from './steps/iam-credential-rotation.js';
import { iamKeyRotation } from './steps/iam-key-rotation.js';
import { iamMtlsRotation } from './steps/iam-mtls-rotation.js';
import { readiness } from './steps/readiness.js';
import { newRunState, type RunState } from './steps/state.js';

const SERVICES = ['chainfire', 'flaredb', 'iam'] as const;

type OpsCtx = ClusterEnv<(typeof SERVICES)[number]> & { state: RunState };

/**
 * The operator lifecycle of the core control plane (chainfire, flaredb, iam) on the running
 * cluster (`fresh-core-control-plane-ops-proof` boots one first): the boundaries the supported
 * contract draws, and every rotation iam offers.
 */
export const coreControlPlaneOpsProof = clusterLane<OpsCtx>()({
  name: 'core-control-plane-ops-proof',
  description:
    "chainfire's fixed membership (an uninvited member refused), flaredb's additive-first migrations (destructive DDL refused outside the contract phase), iam's bootstrap hardening, signing-key rotation with a verify window, credential rotation, and mTLS rotation with the per-cluster CA",
  kind: 'cluster',
  services: SERVICES,
  context: (env) => ({ ...env, state: newRunState('core-control-plane-ops-proof') }),
  steps: [
    readiness,
    chainfireFixedMembership,
    flaredbAdditiveMigration,
    iamBootstrapHardening,
    iamKeyRotation,
    iamCredentialRotation,
    iamMtlsRotation,
  ],
  controls: {
    'chainfire-member-added': {
      description: "add a learner outside the fixed membership, as `etcdctl member add` does, at the uninvited member's peer URL",
      breaks: 'chainfire-fixed-membership',
      fault: ({ services: { chainfire } }) => chainfireMemberAdded(chainfire, chainfire.nodes()[0]!, INTRUDER.name, INTRUDER.peerPort),
    },
    'flaredb-ddl-guard-disabled': {
      description: "disable flaredb's additive-first event trigger on the primary",
      breaks: 'flaredb-additive-migration',
      fault: ({ services: { flaredb } }) => flaredbDdlGuardDisabled(flaredb, flaredb.primary(), DDL_GUARD),
    },
    'iam-retired-key-kept': {
      description: 'a nemesis strikes the verify window of every retired iam signing key as it is written',
      breaks: 'iam-key-rotation',
      fault: ({ services: { iam } }) => iamRetiredKeyKept(iam.adminNode()),
    },
    'iam-crl-not-deployed': {
      description: "empty iam's CRL file before every start of iam.service on the mTLS node",
      breaks: 'iam-mtls-rotation',
      fault: ({ services: { iam } }) => iamCrlNotDeployed(iam.adminNode(), iam.unit, `${iam.credentialsDir()}/tls-crl.pem`),
    },
  },
});
