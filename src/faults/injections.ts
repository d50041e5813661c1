import { randomBytes } from 'node:crypto';
import type { Cluster } from '../cluster/cluster.js';
import { UsageError } from '../core/errors.js';
import type { Fault } from './fault.js';

/**
 * Negative controls for the smoke lane (`--inject NAME`): each breaks exactly what one step
 * proves, right before that step, and is healed at the end of the lane.
 */
export interface Injection {
  /** The step it must turn red. */
  before: string;
  fault: Fault;
}

export const INJECTIONS = {
  'unit-masked': 'mask and stop iam on the second control-plane node (readiness must fail)',
  'flaredb-standby-stopped': 'stop flaredb on the last standby (control-plane formation must fail)',
  'iam-wrong-key': "make the last control-plane node's iam verify with a different key (iam step must fail)",
} as const;
export type InjectionName = keyof typeof INJECTIONS;

export function makeInjection(cluster: Cluster, name: string): Injection {
  const cps = cluster.profile.nodes.filter((n) => n.roles.includes('control-plane')).map((n) => n.name);
  if (cps.length < 2) throw new UsageError(`--inject ${name} needs at least two control-plane nodes`);
  const last = cps[cps.length - 1]!;
  const sh = (node: string, cmd: string) => cluster.sh(node, cmd).then(() => undefined);
  // A restarted Node service takes seconds to listen under TCG: wait for its health endpoint.
  const restartIam = (node: string, env: string) =>
    sh(
      node,
      `echo '${env}' > /etc/ultracloud/iam.env && systemctl restart iam.service && for i in $(seq 120); do curl -sf -o /dev/null http://127.0.0.1:8080/health && exit 0; sleep 0.5; done; echo 'iam did not come back' >&2; exit 1`,
    );
  switch (name as InjectionName) {
    case 'unit-masked': {
      const node = cps[1]!;
      return {
        before: 'readiness',
        fault: {
          name: 'inject unit-masked',
          targets: [node],
          invoke: () => sh(node, 'systemctl mask --now iam.service'),
          heal: () => sh(node, 'systemctl unmask iam.service && systemctl start iam.service'),
        },
      };
    }
    case 'flaredb-standby-stopped':
      return {
        before: 'control-plane-formation',
        fault: {
          name: 'inject flaredb-standby-stopped',
          targets: [last],
          invoke: () => sh(last, 'systemctl stop flaredb.service'),
          heal: () => sh(last, 'systemctl start flaredb.service'),
        },
      };
    case 'iam-wrong-key':
      return {
        before: 'iam-tokens',
        fault: {
          name: 'inject iam-wrong-key',
          targets: [last],
          invoke: () => restartIam(last, `IAM_SIGNING_KEY_OVERRIDE=${randomBytes(16).toString('hex')}`),
          heal: () => restartIam(last, ''),
        },
      };
    default:
      throw new UsageError(`unknown injection "${name}"; known: ${Object.keys(INJECTIONS).join(', ')}`);
  }
}
