import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(REPO, 'bin/ultracloud.js');

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Run the real CLI (compiled dist/, as users run it); never throws on a non-zero exit. */
export async function cli(args: string[], opts: { env?: Record<string, string>; timeout?: number } = {}): Promise<CliResult> {
  const r = await execa('node', [BIN, ...args], {
    reject: false,
    cwd: REPO,
    stdin: 'ignore',
    timeout: opts.timeout,
    env: { ...process.env, ...opts.env },
  });
  return { exitCode: r.exitCode ?? 1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
