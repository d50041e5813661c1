/** A value safe inside single quotes in a POSIX shell. */
export function shellQuote(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

/** KEY='value' lines a POSIX shell can source (fw_cfg env files, the deployer's text/plain answers). */
export function renderEnvFile(env: Record<string, string>): string {
  return `${Object.entries(env)
    .map(([k, v]) => `${k}=${shellQuote(v)}`)
    .join('\n')}\n`;
}
