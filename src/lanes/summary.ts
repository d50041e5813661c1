import type { RunResult } from '../core/result.js';

/**
 * What a failed run prints on stderr: the failing step's whole error (its diagnostics included),
 * how to get into the nodes it names, and where the evidence is.
 */
export function renderFailure(result: RunResult, dir: string, nodes: readonly string[]): string {
  const failed = result.steps.find((s) => s.status === 'failed' || s.status === 'running');
  const lines = ['', `=== ${result.command}: ${result.status.toUpperCase()} ===`];
  if (failed) {
    lines.push(
      `step ${failed.name} ${failed.status === 'running' ? 'was interrupted' : 'failed'}:`,
      ...(failed.error ?? '(no error recorded)').split('\n').map((l) => `  ${l}`),
    );
  } else if (result.error) lines.push(`error: ${result.error}`);
  const named = nodes.filter((n) => new RegExp(`\\b${n}\\b`).test(failed?.error ?? result.error ?? ''));
  for (const n of named) lines.push(`get in: ultracloud ssh ${n}   |   ultracloud logs ${n} --journal   |   ultracloud logs ${n}`);
  if (nodes.length && !named.length)
    lines.push('get in: ultracloud status   |   ultracloud ssh <node>   |   ultracloud logs <node> --journal');
  const skipped = result.steps.filter((s) => s.status === 'skipped' && s.skipped === 'failure').map((s) => s.name);
  if (skipped.length) lines.push(`not run after the failure: ${skipped.join(', ')}`);
  lines.push(...warnings(result));
  lines.push(`evidence: ${dir}/ (result.json, junit.xml, run.log${nodes.length ? ', nodes/<node>/console.log and journal.txt' : ''})`, '');
  return lines.join('\n');
}

const warnings = (result: RunResult) => result.events.filter((e) => e.kind === 'warning').map((e) => `warning: ${e.name}`);

/** A green run still says what looked wrong on the way (health findings, a teardown that failed). */
export function renderWarnings(result: RunResult): string {
  const w = warnings(result);
  return w.length ? `${w.join('\n')}\n` : '';
}
