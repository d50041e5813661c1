import { createWriteStream, promises as fs, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { symlinkAtomic, writeFileAtomicSync } from './atomic.js';
import { ciError, ciGroupEnd, ciGroupStart, ciKind, ciSummary } from './ci.js';
import { errorMessage, isDiskFull, StepSkipped, UsageError, withPath } from './errors.js';
import { renderJunit } from './junit.js';
import { addLogFile, log } from './log.js';
import { writeReports } from './report.js';
import { type HostFacts, type RunEvent, RunResult, runSucceeded, type SkipCause, type StepResult } from './result.js';
import { onCleanup } from './shutdown.js';
import { runStamp, seconds } from './time.js';
import { ensureWorkRoot } from './work-root.js';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** What a step body gets: a logger and a place for evidence files. */
export interface StepContext {
  log: Logger;
  /** Write an evidence file into the run dir (relative name); it is listed on the step. */
  evidence(name: string, content: string | Uint8Array): Promise<string>;
  /** The same, as pretty-printed JSON. */
  json(name: string, value: unknown): Promise<string>;
  /** Path in the run dir for tools that write their own files (console copies, captures). */
  evidencePath(name: string): string;
  /** Mark the start of a phase of a long step: logged, and kept on the step in result.json. */
  phase(name: string): void;
  /** A line-by-line evidence file (a builder's transcript), closed when `body` settles. */
  lines<T>(name: string, body: (write: (line: string) => void) => Promise<T>): Promise<T>;
}

/**
 * <work-root>/<lane>/<stamp>/ with result.json, run.log and junit.xml, written in phases
 * (kola/Jepsen): `running` at start, rewritten atomically after each step, and marked
 * `interrupted` on SIGINT/SIGTERM so a killed run still says what happened.
 */
export class RunRecord {
  readonly log: Logger;
  private readonly result: RunResult;
  private detachLog: () => void;
  private disposeCleanup: () => void;
  private finished = false;
  private readonly ci = ciKind();

  private constructor(
    readonly dir: string,
    lane: string,
    command: string,
    profile: string,
    host: HostFacts,
  ) {
    this.result = {
      schemaVersion: 2,
      lane,
      command,
      profile,
      status: 'running',
      success: false,
      startedAt: new Date().toISOString(),
      finishedAt: null,
      durationMs: null,
      host,
      steps: [],
      events: [],
    };
    this.detachLog = addLogFile(path.join(dir, 'run.log'));
    this.log = log.child({ lane });
    this.disposeCleanup = onCleanup(`run record ${lane}`, async (reason) => {
      this.interrupt(reason);
      await writeReports(this.dir, this.result).catch(() => undefined); // an interrupted run still gets its reports
    });
    // Record the interruption before slower cleanups (stopping guests) get their turn.
    for (const sig of SIGNALS) process.prependListener(sig, this.onSignal);
  }

  private readonly onSignal = (sig: NodeJS.Signals): void => this.interrupt(sig);

  static async create(opts: { workRoot: string; lane: string; command?: string; profile: string; host: HostFacts }): Promise<RunRecord> {
    await ensureWorkRoot(opts.workRoot);
    const laneDir = path.join(opts.workRoot, opts.lane);
    await fs.mkdir(laneDir, { recursive: true });
    const latest = path.join(laneDir, 'latest');
    const l = await fs.lstat(latest).catch(() => null);
    if (l && !l.isSymbolicLink())
      throw new UsageError(
        `${latest} is not the harness's link to the newest run (it is a real ${l.isDirectory() ? 'directory' : 'file'}); move it away first`,
      );
    const dir = makeUniqueDir(laneDir, runStamp());
    let rec: RunRecord | undefined;
    try {
      rec = new RunRecord(dir, opts.lane, opts.command ?? opts.lane, opts.profile, opts.host);
      rec.flush();
      if (rec.writeError) throw rec.writeError;
      await symlinkAtomic(path.basename(dir), latest);
    } catch (err) {
      // No half-written run dir: what could not be recorded is not left behind.
      rec?.abandon();
      await fs.rm(dir, { recursive: true, force: true });
      throw err;
    }
    rec.log.info({ dir }, `run dir ${dir}`);
    return rec;
  }

  get status() {
    return this.result.status;
  }

  get steps(): readonly StepResult[] {
    return this.result.steps;
  }

  /** The record as it stands (for summaries); a copy, so callers cannot change what is written. */
  snapshot(): RunResult {
    return structuredClone(this.result);
  }

  event(kind: RunEvent['kind'], name: string, detail?: Record<string, unknown>): void {
    this.result.events.push({ at: new Date().toISOString(), kind, name, ...(detail ? { detail } : {}) });
    this.log.info({ event: kind, ...detail }, `${kind}: ${name}`);
    this.flush();
  }

  /** How a fresh- run got its cluster: booted, or restored from a snapshot (result.json and the summary say which). */
  setBoot(boot: NonNullable<RunResult['boot']>): void {
    this.result.boot = boot;
    this.flush();
  }

  skip(name: string, why: string, cause: SkipCause): void {
    this.result.steps.push({ name, status: 'skipped', startedAt: null, durationMs: 0, detail: why, skipped: cause, evidence: [] });
    this.log.info(`step ${name} skipped: ${why}`);
    this.flush();
  }

  /** Run one named, timed step; records it and rethrows its error. */
  async step<T>(name: string, body: (ctx: StepContext) => Promise<T>): Promise<T> {
    const started = Date.now();
    const step: StepResult = { name, status: 'running', startedAt: new Date(started).toISOString(), durationMs: 0, evidence: [] };
    this.result.steps.push(step);
    this.flush();
    const stepLog = this.log.child({ step: name });
    process.stderr.write(ciGroupStart(this.ci, name, `${this.result.lane}: ${name}`));
    stepLog.info(`step ${name} ...`);
    const ctx: StepContext = {
      log: stepLog,
      evidencePath: (file) => {
        const p = path.join(this.dir, file);
        if (!step.evidence.includes(file)) step.evidence.push(file);
        mkdirSync(path.dirname(p), { recursive: true });
        return p;
      },
      evidence: async (file, content) => {
        const p = ctx.evidencePath(file);
        await fs.writeFile(p, content).catch((err: unknown) => {
          throw withPath(err, p);
        });
        return p;
      },
      json: (file, value) => ctx.evidence(file, `${JSON.stringify(value, null, 2)}\n`),
      phase: (phase) => {
        const atMs = Date.now() - started;
        step.phases = [...(step.phases ?? []), { name: phase, atMs }];
        stepLog.info(`${name}: ${phase} (at ${seconds(atMs)})`);
        this.flush();
      },
      lines: async (file, fn) => {
        const out = createWriteStream(ctx.evidencePath(file));
        try {
          return await fn((line) => out.write(`${line}\n`));
        } finally {
          await new Promise((resolve) => out.end(resolve));
        }
      },
    };
    try {
      const value = await body(ctx);
      step.status = 'passed';
      if (typeof value === 'string' && value) step.detail = value;
      return value;
    } catch (err) {
      if (err instanceof StepSkipped) {
        Object.assign(step, { status: 'skipped', skipped: 'request', detail: err.message });
        return undefined as T;
      }
      step.status = 'failed';
      step.error = errorMessage(err);
      throw err;
    } finally {
      step.durationMs = Date.now() - started;
      if (this.result.status === 'running') {
        const line = `step ${name} ${step.status} in ${seconds(step.durationMs)}${step.error ? `: ${step.error.split('\n')[0]}` : ''}`;
        if (step.status === 'failed') stepLog.error(line);
        else stepLog.info(line);
        this.flush();
      }
      process.stderr.write(ciGroupEnd(this.ci, name));
      if (step.status === 'failed') process.stderr.write(ciError(this.ci, `${this.result.lane}: ${name}`, step.error ?? 'failed'));
    }
  }

  /** Close the run: success only when every step passed (or was left out on request) and nothing failed outside a step. */
  async finish(error?: unknown): Promise<RunResult> {
    if (!this.finished) {
      this.finished = true;
      const ok = error === undefined && runSucceeded(this.result.steps);
      if (this.result.status === 'running') this.result.status = ok ? 'passed' : 'failed';
      this.result.success = this.result.status === 'passed';
      if (error !== undefined && !this.result.error) this.result.error = errorMessage(error);
      this.stamp();
      this.flush();
      if (this.writeError) {
        // The disk filled up: the record is incomplete, so it is removed rather than left half-written.
        this.abandon();
        await fs.rm(this.dir, { recursive: true, force: true });
        const latest = path.join(path.dirname(this.dir), 'latest');
        if ((await fs.readlink(latest).catch(() => null)) === path.basename(this.dir)) await fs.rm(latest, { force: true });
        throw this.writeError;
      }
      await writeReports(this.dir, this.result).catch((err: unknown) => this.log.warn(`reports not written: ${errorMessage(err)}`));
      ciSummary(this.ci, await fs.readFile(path.join(this.dir, 'summary.md'), 'utf8').catch(() => ''));
      const s = this.result;
      const msg = `${s.lane}: ${s.status.toUpperCase()} (${s.steps.filter((x) => x.status === 'passed').length}/${s.steps.length} steps passed) in ${seconds(s.durationMs ?? 0)}; evidence: ${this.dir}`;
      if (s.success) this.log.info(msg);
      else this.log.error(msg);
      this.disposeCleanup();
      for (const sig of SIGNALS) process.removeListener(sig, this.onSignal);
      this.detachLog();
    }
    return this.result;
  }

  private interrupt(reason: string): void {
    if (this.finished || this.result.status !== 'running') return;
    this.result.status = 'interrupted';
    this.result.success = false;
    this.result.error = `interrupted by ${reason}`;
    for (const s of this.result.steps) if (s.status === 'running') s.error = `interrupted by ${reason}`;
    this.stamp();
    this.flush();
  }

  private stamp(): void {
    const now = new Date();
    this.result.finishedAt = now.toISOString();
    this.result.durationMs = now.getTime() - Date.parse(this.result.startedAt);
  }

  /** The first write of the record that failed for lack of space, if any. */
  private writeError: NodeJS.ErrnoException | null = null;

  /**
   * Synchronous on purpose: it must also work from a signal handler. A full disk does not end
   * the run here (its steps and cleanups still run); `finish` reports it.
   */
  private flush(): void {
    const parsed = RunResult.parse(this.result);
    try {
      writeFileAtomicSync(path.join(this.dir, 'result.json'), `${JSON.stringify(parsed, null, 2)}\n`);
      writeFileAtomicSync(path.join(this.dir, 'junit.xml'), renderJunit(parsed, parsed.host.hostname));
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      this.writeError ??= err;
    }
  }

  /** Stop listening and logging into a run dir that is being removed. */
  private abandon(): void {
    this.finished = true;
    this.disposeCleanup();
    for (const sig of SIGNALS) process.removeListener(sig, this.onSignal);
    this.detachLog();
  }
}

function makeUniqueDir(parent: string, stamp: string): string {
  for (let i = 1; ; i++) {
    const dir = path.join(parent, i === 1 ? stamp : `${stamp}-${i}`);
    try {
      mkdirSync(dir);
      return dir;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}
