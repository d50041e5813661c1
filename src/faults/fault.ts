import { errorMessage } from '../core/errors.js';
import type { RunRecord } from '../core/run-record.js';

/** Jepsen's fault protocol: invoke breaks something, heal undoes it; both land in the run's history. */
export interface Fault {
  name: string;
  targets: string[];
  invoke(): Promise<void>;
  heal(): Promise<void>;
}

/** Tracks invoked faults so the final heal always runs (reverse order), whatever failed. */
export class FaultLog {
  private active: Fault[] = [];

  constructor(private readonly run: RunRecord) {}

  async invoke(f: Fault, detail: Record<string, unknown> = {}): Promise<void> {
    this.run.event('fault', f.name, { targets: f.targets, ...detail });
    this.active.push(f);
    await f.invoke();
  }

  async heal(f: Fault): Promise<void> {
    const i = this.active.indexOf(f);
    if (i < 0) return;
    this.active.splice(i, 1);
    await f.heal();
    this.run.event('heal', f.name, { targets: f.targets });
  }

  /** The final heal: every fault still active, newest first; failures are recorded, not thrown. */
  async healAll(): Promise<void> {
    for (const f of [...this.active].reverse()) {
      try {
        await this.heal(f);
      } catch (err) {
        this.run.event('heal', `${f.name} FAILED`, { targets: f.targets, error: errorMessage(err) });
      }
    }
  }
}
