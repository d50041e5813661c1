import { randomBytes } from 'node:crypto';
import type { Vm, VmImage } from '../../services/plasmavmc.js';
import type { Network } from '../../services/prismnet.js';
import type { TenantToken } from '../../services/tenant-api.js';

/** What one run of a lane writes, so later steps can find it (typed lane state, not closures). */
export interface RunState {
  /** The lane running: its tenants and the names of what it makes carry it. */
  lane: string;
  /** Unique per run: keys, tenants and metric labels carry it, so runs never read each other's data. */
  runId: string;
  /** Set by replicated-state: the row external-entrypoints reads back through the gateway. */
  written?: { chainfireKey: string; flaredbKey: string; value: string };
  /** The image VMs boot; a negative control swaps in one that never says it is ready. */
  vmImage?: VmImage;
  /** Set by worker-virtualization: the tenant's network and its VM on each worker, which vm-network-binding goes on with. */
  hosted?: { tenant: TenantToken; other: TenantToken; image: string; network: Network; vms: Vm[] };
  /** Set by webapp-vm: where the demo web app keeps its counter and snapshots, and what it should show. */
  webapp?: { counterKey: string; bucket: string; visits: number; boot: string };
  /** Set by serve-webapp: the host URL its forward serves the web app at (left running). */
  served?: string;
}

export function newRunState(lane: string): RunState {
  return { lane, runId: `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}` };
}
