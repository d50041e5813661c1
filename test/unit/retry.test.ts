import { describe, expect, it } from 'vitest';
import { CheckFailed } from '../../src/core/errors.js';
import { allOrAbort, StopWaiting, waitFor } from '../../src/core/retry.js';

describe('waitFor, the one retry primitive', () => {
  it('retries until the attempt returns, and returns its value', async () => {
    let n = 0;
    const v = await waitFor('the third try', { timeoutMs: 5000, intervalMs: 10 }, async () => {
      if (++n < 3) throw new Error(`try ${n}`);
      return 'ok';
    });
    expect(v).toBe('ok');
    expect(n).toBe(3);
  });

  it('at the deadline names what it waited for, how long, the last answer, and the diagnostics', async () => {
    const t0 = Date.now();
    const err = await waitFor(
      'the moon to turn blue',
      { timeoutMs: 300, intervalMs: 50, diagnostics: async () => 'moon color: grey' },
      async () => {
        throw new Error('still grey');
      },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckFailed);
    expect((err as Error).message).toMatch(/^the moon to turn blue: not true within 0\.\d s; last attempt: still grey\nmoon color: grey$/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('StopWaiting ends the wait at once: the answer is already known', async () => {
    const t0 = Date.now();
    const err = await waitFor('a unit to start', { timeoutMs: 60_000 }, async () => {
      throw new StopWaiting('node02: iam.service is masked');
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('node02: iam.service is masked');
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('an attempt that hangs is cut off at the deadline', async () => {
    const t0 = Date.now();
    const err = await waitFor('a wedged guest', { timeoutMs: 1200 }, () => new Promise(() => {})).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/a wedged guest: .*attempt 1 still had no answer at the deadline/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});

describe('allOrAbort, concurrent waits that fail together', () => {
  it('the first failure calls off the other waits, which stop polling before the call returns, and is what the call throws', async () => {
    const t0 = Date.now();
    const polls = { node01: 0, node02: 0 };
    const err = await allOrAbort(['node01', 'node02', 'node03'] as const, (node, signal) =>
      node === 'node03'
        ? Promise.reject(new StopWaiting('node03: iam.service is masked'))
        : waitFor(`${node} ready`, { timeoutMs: 60_000, intervalMs: 20, maxIntervalMs: 20, signal }, async () => {
            polls[node]++;
            throw new Error('not yet');
          }),
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe('node03: iam.service is masked');
    expect(Date.now() - t0).toBeLessThan(2000);
    const after = { ...polls };
    await new Promise((r) => setTimeout(r, 100));
    expect(polls).toEqual(after); // nothing is still polling behind the caller
  });

  it('returns every result in order when all succeed', async () => {
    expect(await allOrAbort([3, 1, 2], async (n) => n * 10)).toEqual([30, 10, 20]);
  });
});
