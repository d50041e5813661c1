/**
 * The one helper that turns data into remote shell text. Anything that reaches a guest's shell
 * from a profile, a URL or a user goes through `shellQuote`, never through string templates.
 */

/** A value safe inside single quotes in a POSIX shell. */
export function shellQuote(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

/** argv as one shell command line: every word quoted, so no word is ever re-split or expanded. */
export function shellCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new RangeError('empty argv');
  return argv.map(shellQuote).join(' ');
}

/** KEY='value' lines a POSIX shell can source (fw_cfg env files, the deployer's text/plain answers). */
export function renderEnvFile(env: Record<string, string>): string {
  return `${Object.entries(env)
    .map(([k, v]) => `${k}=${shellQuote(v)}`)
    .join('\n')}\n`;
}
