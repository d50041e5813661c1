import { CheckFailed, errorMessage } from '../core/errors.js';

/**
 * The one retry primitive for convergence checks (NixOS driver style): retry `fn` until it
 * returns, and when the deadline passes throw with `what` plus the last attempt's error.
 */
export async function eventually<T>(what: string, timeoutMs: number, fn: () => Promise<T>, intervalMs = 1000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      last = err;
    }
    if (Date.now() + intervalMs > deadline)
      throw new CheckFailed(`${what}: not true within ${Math.round(timeoutMs / 1000)} s; last attempt: ${errorMessage(last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
