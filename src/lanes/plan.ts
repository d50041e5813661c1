import { UsageError } from '../core/errors.js';
import type { AnyLane } from './lane.js';

export interface PlannedStep {
  name: string;
  /** null: runs; otherwise why it is left out on request. */
  skip: string | null;
}

/**
 * Which steps run: all, or `--only` and what they need (transitively), minus `--skip` and
 * whatever needs a skipped step. Negative controls must break a step that runs. Names are
 * checked here, before anything happens: a typo is exit 2 naming the lane's steps.
 */
export function planSteps(lane: AnyLane, o: { only?: string[]; skip?: string[]; inject?: string[] } = {}): PlannedStep[] {
  const names = lane.steps.map((s) => s.name);
  const known = (list: string[] | undefined, flag: string) => {
    const bad = (list ?? []).filter((n) => !names.includes(n));
    if (bad.length) throw new UsageError(`${flag} ${bad.join(' ')}: no such step in ${lane.name} (steps: ${names.join(', ')})`);
  };
  known(o.only, '--only');
  known(o.skip, '--skip');
  const needs = new Map(lane.steps.map((s) => [s.name, s.needs ?? []]));
  const wanted = new Set<string>();
  const want = (n: string) => {
    if (wanted.has(n)) return;
    wanted.add(n);
    for (const d of needs.get(n) ?? []) want(d);
  };
  for (const n of o.only?.length ? o.only : names) want(n);
  const skipped = new Set(o.skip ?? []);
  const plan = names.map((n): PlannedStep => {
    if (!wanted.has(n)) return { name: n, skip: `skipped by request (--only ${o.only?.join(' ')})` };
    if (skipped.has(n)) return { name: n, skip: 'skipped by request (--skip)' };
    const missing = (needs.get(n) ?? []).find((d) => skipped.has(d));
    if (missing) {
      skipped.add(n);
      return { name: n, skip: `skipped by request: needs ${missing}, which --skip leaves out` };
    }
    return { name: n, skip: null };
  });
  for (const c of o.inject ?? []) {
    const control = lane.controls[c];
    if (!control)
      throw new UsageError(
        `--inject ${c}: ${lane.name} has no such negative control (has: ${Object.keys(lane.controls).join(', ') || 'none'})`,
      );
    const target = plan.find((p) => p.name === control.breaks);
    if (target?.skip) throw new UsageError(`--inject ${c} breaks ${control.breaks}, which this run leaves out (${target.skip})`);
  }
  return plan;
}
