import type { FleetSchedulerClient } from '../services/fleet.js';
import type { TenantToken } from '../services/tenant-api.js';
import type { Fault } from './fault.js';

/** Planned maintenance as a fault: the worker drained through fleet-scheduler's API; heal: the drain lifted. */
export function workerDrained(fleet: FleetSchedulerClient, who: TenantToken, worker: string): Fault {
  return {
    kind: 'worker-drained',
    name: `worker-drained ${worker}`,
    targets: [worker],
    invoke: () => fleet.drain(who, worker, 'maintenance (scheduler-drain-failover)'),
    heal: async () => {
      await fleet.undrain(who, worker);
    },
  };
}
