import type { Node } from '../cluster/node.js';
import type { Fault } from './fault.js';
import { startHook } from './start-hook.js';

/** A rotation whose revocation list never reaches iam: the CRL file emptied before every start of its unit. */
export function iamCrlNotDeployed(node: Node, unit: string, crlFile: string): Fault {
  return startHook({
    kind: 'iam-crl-not-deployed',
    name: `iam-crl-not-deployed: ${unit} on ${node} starts with ${crlFile} empty`,
    node,
    unit,
    command: `/usr/bin/truncate -s 0 ${crlFile}`,
  });
}
