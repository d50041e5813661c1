import type { RunResult } from '../config/result.js';

const escapeXml = (s: string): string =>
  s
    .replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!)
    // XML 1.0 forbids most control characters; console tails are full of them.
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/g, '');

/** One <testcase> per step, in the JUnit dialect Jenkins, GitLab and GitHub reporters all read. */
export function renderJunit(result: RunResult, hostname: string): string {
  const failed = result.steps.filter((s) => s.status === 'failed' || s.status === 'running');
  const skipped = result.steps.filter((s) => s.status === 'skipped');
  const secs = (ms: number | null) => ((ms ?? 0) / 1000).toFixed(3);
  const cases = result.steps.map((s) => {
    const open = `    <testcase classname="ultracloud.${escapeXml(result.lane)}" name="${escapeXml(s.name)}" time="${secs(s.durationMs)}"`;
    if (s.status === 'passed') return `${open}/>`;
    if (s.status === 'skipped') return `${open}>\n      <skipped/>\n    </testcase>`;
    const msg = s.status === 'running' ? `interrupted while running (${result.status})` : (s.error ?? 'failed');
    return `${open}>\n      <failure message="${escapeXml(msg.split('\n')[0] ?? msg)}">${escapeXml(msg)}</failure>\n    </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="ultracloud" tests="${result.steps.length}" failures="${failed.length}" skipped="${skipped.length}" time="${secs(result.durationMs)}">`,
    `  <testsuite name="${escapeXml(result.lane)}" tests="${result.steps.length}" failures="${failed.length}" errors="0" skipped="${skipped.length}" time="${secs(result.durationMs)}" timestamp="${result.startedAt}" hostname="${escapeXml(hostname)}">`,
    `    <properties><property name="profile" value="${escapeXml(result.profile)}"/><property name="status" value="${result.status}"/></properties>`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
