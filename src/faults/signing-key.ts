import { randomBytes } from 'node:crypto';
import type { Node } from '../cluster/node.js';
import type { IamClient } from '../services/iam.js';
import type { Fault } from './fault.js';

/** Give one node's iam a signing key of its own: tokens issued elsewhere fail its verification. Heal restores the cluster's key. */
export function iamWrongKey(iam: IamClient, node: Node): Fault {
  return {
    kind: 'iam-wrong-key',
    name: `iam-wrong-key on ${node}`,
    targets: [node.name],
    invoke: () => iam.overrideSigningKey(node, randomBytes(16).toString('hex')),
    heal: () => iam.overrideSigningKey(node, null),
  };
}
