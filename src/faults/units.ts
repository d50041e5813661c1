import type { Node } from '../cluster/node.js';
import type { ServiceClient } from '../services/service.js';
import type { Fault } from './fault.js';

/** Stop a service's unit on a node; heal starts it again. The unit comes from the service's contract. */
export function unitStopped(service: ServiceClient<unknown>, node: Node): Fault {
  const unit = service.unit;
  return {
    kind: 'unit-stopped',
    name: `unit-stopped ${unit} on ${node}`,
    targets: [node.name],
    invoke: async () => void (await node.succeed(['systemctl', 'stop', unit])),
    heal: async () => {
      await node.succeed(['systemctl', 'start', unit], { timeoutMs: 180_000 });
      await node.waitForUnit(unit);
    },
  };
}

/** Mask and stop a service's unit on a node (it cannot start again); heal unmasks and starts it. */
export function unitMasked(service: ServiceClient<unknown>, node: Node): Fault {
  const unit = service.unit;
  return {
    kind: 'unit-masked',
    name: `unit-masked ${unit} on ${node}`,
    targets: [node.name],
    invoke: async () => void (await node.succeed(['systemctl', 'mask', '--now', unit])),
    heal: async () => {
      await node.succeed(['systemctl', 'unmask', unit]);
      await node.succeed(['systemctl', 'start', unit], { timeoutMs: 180_000 });
      await node.waitForUnit(unit);
    },
  };
}
