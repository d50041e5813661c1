import type { RunResult } from '../config/result.js';
import { errorMessage } from '../core/errors.js';
import type { RunRecord, StepContext } from '../core/run-record.js';

export interface LaneStep {
  name: string;
  run(ctx: StepContext): Promise<string | undefined>;
}

/**
 * Run named steps in order into a run record. After the first failure the remaining steps are
 * recorded as skipped (naming the failed step); `finally` always runs (final heal, evidence).
 */
export async function runSteps(
  rec: RunRecord,
  steps: LaneStep[],
  opts: { before?: (step: string) => Promise<void>; finally?: () => Promise<void> } = {},
): Promise<RunResult> {
  let failed: string | null = null;
  try {
    for (const s of steps) {
      if (failed) {
        rec.skip(s.name, `skipped: step ${failed} failed`);
        continue;
      }
      try {
        await rec.step(s.name, async (ctx) => {
          await opts.before?.(s.name);
          return s.run(ctx);
        });
      } catch {
        failed = s.name;
      }
    }
  } finally {
    try {
      await opts.finally?.();
    } catch (err) {
      rec.event('info', 'lane cleanup failed', { error: errorMessage(err) });
    }
  }
  return rec.finish();
}
