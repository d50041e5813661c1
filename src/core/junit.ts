import type { RunResult } from './result.js';

const escapeXml = (s: string): string =>
  s
    .replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!)
    // XML 1.0 forbids most control characters; console tails are full of them.
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/g, '');

/**
 * One <testcase> per step, in the JUnit dialect Jenkins, GitLab and GitHub reporters all read:
 * a failure carries the step's whole error, a skip its reason, and every step its detail and
 * evidence files in <system-out>.
 */
export function renderJunit(result: RunResult, hostname: string): string {
  const failed = result.steps.filter((s) => s.status === 'failed' || s.status === 'running');
  const skipped = result.steps.filter((s) => s.status === 'skipped');
  const secs = (ms: number | null) => ((ms ?? 0) / 1000).toFixed(3);
  const cases = result.steps.map((s) => {
    const open = `    <testcase classname="ultracloud.${escapeXml(result.lane)}" name="${escapeXml(s.name)}" time="${secs(s.durationMs)}">`;
    const body: string[] = [];
    if (s.status === 'skipped') body.push(`      <skipped message="${escapeXml(s.detail ?? 'skipped')}"/>`);
    if (s.status === 'failed' || s.status === 'running') {
      const msg = s.status === 'running' ? `interrupted while running (${result.status})` : (s.error ?? 'failed');
      body.push(`      <failure message="${escapeXml(msg.split('\n')[0] ?? msg)}">${escapeXml(msg)}</failure>`);
    }
    const out = [s.status !== 'skipped' ? s.detail : undefined, s.evidence.length ? `evidence: ${s.evidence.join(', ')}` : undefined]
      .filter((x): x is string => Boolean(x))
      .join('\n');
    if (out) body.push(`      <system-out>${escapeXml(out)}</system-out>`);
    return body.length ? `${open}\n${body.join('\n')}\n    </testcase>` : open.replace(/>$/, '/>');
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="ultracloud" tests="${result.steps.length}" failures="${failed.length}" skipped="${skipped.length}" time="${secs(result.durationMs)}">`,
    `  <testsuite name="${escapeXml(result.lane)}" tests="${result.steps.length}" failures="${failed.length}" errors="0" skipped="${skipped.length}" time="${secs(result.durationMs)}" timestamp="${result.startedAt}" hostname="${escapeXml(hostname)}">`,
    `    <properties><property name="profile" value="${escapeXml(result.profile)}"/><property name="command" value="${escapeXml(result.command)}"/><property name="status" value="${result.status}"/></properties>`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
