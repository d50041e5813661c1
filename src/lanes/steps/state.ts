import { randomBytes } from 'node:crypto';

/** What one run of a lane writes, so later steps can find it (typed lane state, not closures). */
export interface RunState {
  /** Unique per run: keys, tenants and metric labels carry it, so runs never read each other's data. */
  runId: string;
  /** Set by replicated-state: the row external-entrypoints reads back through the gateway. */
  written?: { chainfireKey: string; flaredbKey: string; value: string };
}

export function newRunState(): RunState {
  return { runId: `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}` };
}
