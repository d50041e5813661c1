import { FollowEnded, followFile } from '../core/follow-file.js';

/**
 * kola testiso's completion tokens: fixed `ULTRACLOUD_MARKER <name> [detail]` lines on a
 * virtio-serial port, checked as an ordered sequence. `FAIL <stage> <reason>` (the guest's
 * emergency path) and a rolled-back desired system end the run at once.
 */
export const MARKER_PREFIX = 'ULTRACLOUD_MARKER';
export const INSTALL_SEQUENCE = [
  'pre-install-boot',
  'phone-home-ok',
  'plan-received',
  'disk-selected',
  'install-done',
  'post-install-boot',
  'desired-system-active',
] as const;
export type InstallMarker = (typeof INSTALL_SEQUENCE)[number];
/** Lines that end a run at once; the detail names the stage. */
export const FAILURE_MARKERS = ['FAIL', 'desired-system-rolled-back'] as const;

export interface SeenMarker {
  name: string;
  detail: string;
  at: string;
  /** Milliseconds since the tracker started. */
  ms: number;
}

/** Longest line worth keeping while waiting for its newline. */
const MAX_LINE = 64 * 1024;

export class MarkerFailure extends Error {
  override name = 'MarkerFailure';
}

export function parseMarkerLine(line: string): { name: string; detail: string } | null {
  const i = line.indexOf(`${MARKER_PREFIX} `);
  if (i < 0) return null;
  const [name = '', ...rest] = line
    .slice(i + MARKER_PREFIX.length + 1)
    .trim()
    .split(/\s+/);
  return name ? { name, detail: rest.join(' ') } : null;
}

/**
 * Follows one machine's marker log from launch on, in the background; `waitFor` resolves when
 * a marker of the sequence arrives in order and rejects with the last marker seen otherwise.
 */
export class MarkerTracker {
  readonly seen: SeenMarker[] = [];
  private error: MarkerFailure | null = null;
  private listeners = new Set<() => void>();
  private readonly t0 = Date.now();
  private readonly stopping = new AbortController();
  private done: Promise<void>;
  private readonly sequence: readonly string[];
  private readonly onMarker?: (m: SeenMarker) => void;

  constructor(
    readonly machine: string,
    file: string,
    o: {
      alive: () => Promise<boolean>;
      deadline: number;
      sequence?: readonly string[];
      onMarker?: (m: SeenMarker) => void;
      /** Every chunk read, for a bounded copy of the log as evidence. */
      transcript?: (text: string) => void;
    },
  ) {
    this.sequence = o.sequence ?? INSTALL_SEQUENCE;
    this.onMarker = o.onMarker;
    let partial = '';
    this.done = followFile(
      file,
      (text) => {
        o.transcript?.(text);
        const lines = (partial + text).split('\n');
        // A marker is one short line: an endless line without newlines is kept only as far as a marker could reach.
        partial = (lines.pop() ?? '').slice(-MAX_LINE);
        for (const line of lines) this.consume(line);
        this.notify();
        return this.error ? true : undefined;
      },
      { deadline: o.deadline, alive: o.alive, what: `${machine}: markers`, signal: this.stopping.signal },
    ).then(
      () => undefined,
      (err: unknown) => {
        if (partial) this.consume(partial); // a log that ends without a newline still counts
        if (this.stopping.signal.aborted) return;
        if (err instanceof FollowEnded) this.fail(err.reason === 'ended' ? 'the machine (QEMU) exited' : 'the deadline passed');
        else this.fail(String(err));
      },
    );
  }

  private consume(line: string): void {
    const m = parseMarkerLine(line);
    if (!m) return;
    const expected = this.sequence[this.seen.filter((x) => this.sequence.includes(x.name)).length];
    const seen = { ...m, at: new Date().toISOString(), ms: Date.now() - this.t0 };
    this.seen.push(seen);
    this.onMarker?.(seen);
    if (m.name === 'FAIL') this.fail(`failure marker at ${m.detail.split(' ')[0]}: ${m.detail}`);
    else if (m.name === 'desired-system-rolled-back') this.fail(`desired system was rolled back: ${m.detail}`);
    else if (this.sequence.includes(m.name) && m.name !== expected)
      this.fail(`marker ${m.name} out of order (expected ${expected ?? 'nothing more'})`);
  }

  last(): string {
    const l = this.seen.at(-1);
    return l ? `${l.name}${l.detail ? ` ${l.detail}` : ''}` : '(none)';
  }

  private fail(why: string): void {
    if (!this.error) this.error = new MarkerFailure(`${this.machine}: ${why}; last marker: ${this.last()}`);
    this.notify();
  }

  private notify(): void {
    for (const l of this.listeners) l();
  }

  async waitFor(name: InstallMarker | string): Promise<SeenMarker> {
    for (;;) {
      const hit = this.seen.find((s) => s.name === name);
      if (hit) return hit;
      if (this.error) throw this.error;
      await new Promise<void>((resolve) => {
        const l = () => {
          this.listeners.delete(l);
          resolve();
        };
        this.listeners.add(l);
      });
    }
  }

  /** Stop following; the follower wakes on the abort at once. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.done;
  }
}
