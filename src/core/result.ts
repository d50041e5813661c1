import { z } from 'zod';

/** The machine-readable record every lane leaves in <work-root>/<lane>/<stamp>/result.json. */
export const StepStatus = z.enum(['running', 'passed', 'failed', 'skipped']);
export type StepStatus = z.infer<typeof StepStatus>;

/** Why a step did not run: the user asked (`--only`/`--skip`), or an earlier step failed. */
export const SkipCause = z.enum(['request', 'failure']);
export type SkipCause = z.infer<typeof SkipCause>;

export const StepResult = z.object({
  name: z.string(),
  status: StepStatus,
  startedAt: z.string().nullable(),
  durationMs: z.number().nonnegative(),
  detail: z.string().optional(),
  error: z.string().optional(),
  skipped: SkipCause.optional(),
  evidence: z.array(z.string()),
  /** Where a long step got to, and when (ms after it started): what a slow or failed step was doing. */
  phases: z.array(z.object({ name: z.string(), atMs: z.number().nonnegative() })).optional(),
});
export type StepResult = z.infer<typeof StepResult>;

/** Jepsen-style history: faults, heals and notable probe results on one timeline. */
export const RunEvent = z.object({
  at: z.string(),
  kind: z.enum(['fault', 'heal', 'probe', 'info', 'warning']),
  name: z.string(),
  detail: z.record(z.string(), z.unknown()).optional(),
});
export type RunEvent = z.infer<typeof RunEvent>;

export const HostFacts = z.object({
  hostname: z.string(),
  kernel: z.string(),
  arch: z.string(),
  cpus: z.number().int(),
  memoryMiB: z.number().int(),
  node: z.string(),
  accel: z.string().optional(),
});
export type HostFacts = z.infer<typeof HostFacts>;

export const RunStatus = z.enum(['running', 'passed', 'failed', 'interrupted']);
export type RunStatus = z.infer<typeof RunStatus>;

export const RunResult = z.object({
  schemaVersion: z.literal(2),
  lane: z.string(),
  /** The command as invoked (`fresh-smoke`, `smoke --only replicated-state`). */
  command: z.string(),
  profile: z.string(),
  status: RunStatus,
  success: z.boolean(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  durationMs: z.number().nonnegative().nullable(),
  host: HostFacts,
  steps: z.array(StepResult),
  events: z.array(RunEvent),
  /** fresh- runs: a real boot, or a restore from which snapshot. */
  boot: z.object({ mode: z.enum(['cold', 'snapshot']), snapshot: z.string().optional() }).optional(),
  error: z.string().optional(),
});
export type RunResult = z.infer<typeof RunResult>;

/** A run passes when nothing failed, something ran, and every step either passed or was left out on request. */
export function runSucceeded(steps: readonly StepResult[]): boolean {
  return steps.some((s) => s.status === 'passed') && steps.every((s) => s.status === 'passed' || s.skipped === 'request');
}
