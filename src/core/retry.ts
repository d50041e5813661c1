import pRetry, { AbortError } from 'p-retry';
import type { Logger } from 'pino';
import { CheckFailed, errorMessage } from './errors.js';
import { seconds } from './time.js';

/**
 * The one retry primitive (the NixOS test driver's `retry`, on p-retry): try until the attempt
 * returns or the deadline passes. Every wait names what it waited for; a failed wait says how
 * long, what the last attempt said, and what `diagnostics` collected at that moment. An attempt
 * that hangs is cut off at the deadline; `StopWaiting` ends the wait at once when the answer is
 * already known (a unit failed, the guest died).
 */
export interface WaitOptions {
  timeoutMs: number;
  /** First pause between attempts (default 1 s); grows by 1.5x up to `maxIntervalMs` (default 5 s). */
  intervalMs?: number;
  maxIntervalMs?: number;
  /** Collected once, when the wait fails, and appended to the error. */
  diagnostics?: () => Promise<string>;
  /** A line every `everyMs` (default 15 s) while waiting, with the last attempt's answer. */
  progress?: { log: Logger; everyMs?: number };
  signal?: AbortSignal;
}

/** Thrown by an attempt to fail the wait now: retrying cannot change the answer. */
export class StopWaiting extends CheckFailed {
  override name = 'StopWaiting';
}

const HUNG = Symbol('hung');

export async function waitFor<T>(what: string, o: WaitOptions, attempt: (n: number) => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const deadline = t0 + o.timeoutMs;
  let last: unknown;
  const beat = o.progress
    ? setInterval(
        () => o.progress?.log.info(`still waiting (${seconds(Date.now() - t0)}): ${what}${last ? `; last: ${firstLine(last)}` : ''}`),
        o.progress.everyMs ?? 15_000,
      )
    : undefined;
  try {
    return await pRetry(
      async (n) => {
        // An attempt may hang (a wedged guest): it gets what is left of the deadline, at least 1 s.
        let timer: NodeJS.Timeout | undefined;
        const cut = new Promise<typeof HUNG>((resolve) => {
          timer = setTimeout(() => resolve(HUNG), Math.max(deadline - Date.now(), 1000));
        });
        try {
          const r = await Promise.race([attempt(n), cut]);
          if (r === HUNG) throw new AbortError(new CheckFailed(`attempt ${n} still had no answer at the deadline`));
          return r;
        } catch (err) {
          if (err instanceof StopWaiting) throw new AbortError(err);
          throw err;
        } finally {
          clearTimeout(timer);
        }
      },
      {
        retries: Number.POSITIVE_INFINITY,
        minTimeout: o.intervalMs ?? 1000,
        maxTimeout: o.maxIntervalMs ?? 5000,
        factor: 1.5,
        maxRetryTime: o.timeoutMs,
        signal: o.signal,
        onFailedAttempt: ({ error }) => {
          last = error;
        },
      },
    );
  } catch (err) {
    // Called off by the caller (a sibling wait already failed): no verdict and no diagnostics of our own.
    if (o.signal?.aborted) throw o.signal.reason;
    const cause =
      err instanceof StopWaiting
        ? errorMessage(err)
        : `not true within ${seconds(Date.now() - t0)}; last attempt: ${errorMessage(last ?? err)}`;
    const extra = o.diagnostics ? await o.diagnostics().catch((e: unknown) => `(diagnostics failed: ${errorMessage(e)})`) : '';
    throw new CheckFailed(`${err instanceof StopWaiting ? '' : `${what}: `}${cause}${extra ? `\n${extra}` : ''}`);
  } finally {
    clearInterval(beat);
  }
}

function firstLine(err: unknown): string {
  return (errorMessage(err).split('\n')[0] ?? '').slice(0, 200);
}

/**
 * Promise.all for concurrent waits: the first failure calls off the others (through the signal
 * each gets) and the call returns only once all have settled, so no wait keeps polling behind the
 * caller's back (after a run it would hold the process open).
 */
export async function allOrAbort<T, R>(items: readonly T[], fn: (item: T, signal: AbortSignal) => Promise<R>): Promise<R[]> {
  const ac = new AbortController();
  let first: { err: unknown } | undefined;
  const settled = await Promise.allSettled(
    items.map((item) =>
      fn(item, ac.signal).catch((err: unknown) => {
        if (!first) {
          first = { err };
          ac.abort(new CheckFailed('called off: another wait failed'));
        }
        throw err;
      }),
    ),
  );
  if (first) throw first.err;
  return settled.map((s) => (s as PromiseFulfilledResult<R>).value);
}
