import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { errorMessage } from '../core/errors.js';
import type { RunRecord } from '../core/run-record.js';

/**
 * Jepsen's fault protocol: invoke breaks something, heal undoes it. A fault is a value: its
 * catalog kind, the targets it resolved to, and the two actions; the history records both with
 * timestamps, in result.json's events and in faults.json.
 */
export interface Fault {
  /** The catalog entry (`power-cut`, `unit-masked`, ...). */
  kind: string;
  /** This instance: kind and targets, as the history shows it. */
  name: string;
  targets: string[];
  /** May resolve to details worth recording (the leader it hit, a term). */
  invoke(): Promise<unknown>;
  heal(): Promise<void>;
}

export interface FaultEntry {
  name: string;
  kind: string;
  targets: string[];
  invokedAt: string;
  detail: Record<string, unknown>;
  healedAt: string | null;
  /** healed: heal ran; failed: heal threw; stopped: the cluster was stopped, which heals everything. */
  heal: 'pending' | 'healed' | 'failed' | 'stopped';
  healError?: string;
}

/** The run's faults: invoked in order, healed in reverse, and the final heal always runs. */
export class FaultHistory {
  private readonly entries: FaultEntry[] = [];
  private readonly active: { fault: Fault; entry: FaultEntry }[] = [];
  private healing: Promise<void> | null = null;

  constructor(private readonly rec: RunRecord) {
    this.save(); // every run dir has the file, empty when nothing was broken
  }

  async invoke(fault: Fault, detail: Record<string, unknown> = {}): Promise<void> {
    const entry: FaultEntry = {
      name: fault.name,
      kind: fault.kind,
      targets: fault.targets,
      invokedAt: new Date().toISOString(),
      detail,
      healedAt: null,
      heal: 'pending',
    };
    this.entries.push(entry);
    this.active.push({ fault, entry });
    this.rec.event('fault', fault.name, { kind: fault.kind, targets: fault.targets, ...detail });
    this.save();
    const more = await fault.invoke();
    if (more && typeof more === 'object') {
      Object.assign(entry.detail, more);
      this.save();
    }
  }

  async heal(fault: Fault): Promise<void> {
    const i = this.active.findIndex((a) => a.fault === fault);
    if (i < 0) return;
    const [{ entry }] = this.active.splice(i, 1) as [{ fault: Fault; entry: FaultEntry }];
    try {
      await fault.heal();
      this.close(entry, 'healed');
    } catch (err) {
      this.close(entry, 'failed', errorMessage(err));
      throw err;
    }
  }

  /**
   * The final heal: every fault still active, newest first; failures are recorded, not thrown.
   * `byStop`: the cluster is about to be stopped, which heals everything; say so instead of
   * spending minutes restoring what is thrown away. Safe to call twice (a signal during the lane's own final heal).
   */
  healAll(o: { byStop?: boolean } = {}): Promise<void> {
    this.healing ??= (async () => {
      while (this.active.length > 0) {
        const { fault, entry } = this.active.at(-1)!;
        if (o.byStop) {
          this.active.pop();
          this.close(entry, 'stopped');
          continue;
        }
        await this.heal(fault).catch(() => undefined);
      }
    })().finally(() => {
      this.healing = null;
    });
    return this.healing;
  }

  get history(): readonly FaultEntry[] {
    return this.entries;
  }

  private close(entry: FaultEntry, how: FaultEntry['heal'], error?: string): void {
    entry.heal = how;
    entry.healedAt = new Date().toISOString();
    if (error) entry.healError = error;
    const what = how === 'stopped' ? `${entry.name} (cluster stopped)` : how === 'failed' ? `${entry.name} FAILED` : entry.name;
    this.rec.event('heal', what, { kind: entry.kind, targets: entry.targets, ...(error ? { error } : {}) });
    this.save();
  }

  /** Synchronous: also written from a signal's cleanup. */
  private save(): void {
    writeFileSync(path.join(this.rec.dir, 'faults.json'), `${JSON.stringify(this.entries, null, 2)}\n`);
  }
}
