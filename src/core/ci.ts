import { appendFileSync } from 'node:fs';

/**
 * When a run happens inside a CI system, speak its language on stderr: each step a collapsible
 * group, the failing step an error annotation, the summary on the job's page (GitHub Actions'
 * step summary). Detected from the environment those systems set.
 */
export type CiKind = 'github' | 'gitlab' | null;

export function ciKind(env: NodeJS.ProcessEnv = process.env): CiKind {
  if (env.GITHUB_ACTIONS === 'true') return 'github';
  if (env.GITLAB_CI === 'true') return 'gitlab';
  return null;
}

/** GitHub's workflow-command escaping of a property or message. */
const gh = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const section = (name: string) => name.replace(/[^A-Za-z0-9_.-]/g, '_');

export function ciGroupStart(kind: CiKind, name: string, title: string): string {
  if (kind === 'github') return `::group::${gh(title)}\n`;
  if (kind === 'gitlab') return `\x1b[0Ksection_start:${Math.floor(Date.now() / 1000)}:${section(name)}[collapsed=true]\r\x1b[0K${title}\n`;
  return '';
}

export function ciGroupEnd(kind: CiKind, name: string): string {
  if (kind === 'github') return '::endgroup::\n';
  if (kind === 'gitlab') return `\x1b[0Ksection_end:${Math.floor(Date.now() / 1000)}:${section(name)}\r\x1b[0K\n`;
  return '';
}

export function ciError(kind: CiKind, title: string, message: string): string {
  if (kind === 'github') return `::error title=${gh(title)}::${gh(message)}\n`;
  if (kind === 'gitlab') return `\x1b[31;1mERROR: ${title}: ${message.split('\n')[0]}\x1b[0m\n`;
  return '';
}

/** GitHub Actions shows this file on the job's summary page. */
export function ciSummary(kind: CiKind, markdown: string, env: NodeJS.ProcessEnv = process.env): void {
  if (kind === 'github' && env.GITHUB_STEP_SUMMARY) appendFileSync(env.GITHUB_STEP_SUMMARY, `${markdown}\n`);
}
