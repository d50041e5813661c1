import type { InstallContract } from '../config/install-contract.js';
import type { Fault } from './fault.js';

/**
 * Operator mistakes as faults: each edits the install contract a bare-metal run serves, in place
 * (the deployer reads the same object); heal puts every field back.
 */
function contractFault(kind: string, contract: InstallContract, targets: string[], edit: (c: InstallContract) => void): Fault {
  let before: InstallContract | null = null;
  return {
    kind,
    name: `${kind} on ${targets.join(', ')}`,
    targets,
    invoke: async () => {
      before = structuredClone(contract);
      edit(contract);
    },
    heal: async () => {
      if (before) Object.assign(contract, before);
    },
  };
}

/** The control-plane class plan names a disk id no machine has: the install must fail at "disk selected". */
export function badDiskId(contract: InstallContract): Fault {
  const cls = 'control-plane' in contract.classes ? 'control-plane' : Object.keys(contract.classes)[0]!;
  const targets = contract.nodes.filter((n) => n.class === cls).map((n) => n.id);
  return contractFault('bad-disk-id', contract, targets, (c) => {
    c.classes[cls]!.install_plan.disk = '/dev/disk/by-id/virtio-uc-missing-root';
  });
}

/** The worker's desired system never passes its health check: its agent must roll back. */
export function unhealthySystem(contract: InstallContract): Fault {
  const node = contract.nodes.find((x) => x.class === 'worker') ?? contract.nodes.at(-1)!;
  return contractFault('unhealthy-system', contract, [node.id], (c) => {
    const n = c.nodes.find((x) => x.id === node.id)!;
    n.desired_system = { target_system: 'broken-health-v1', health_check: n.desired_system?.health_check ?? 'false', health_timeout_s: 10 };
  });
}
