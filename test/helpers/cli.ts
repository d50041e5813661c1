import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Options } from 'execa';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(REPO, 'bin/ultracloud.js');

/** Run the real CLI (compiled dist/, as users run it); never throws on a non-zero exit. */
export function cli(args: string[], opts: Options = {}) {
  return execa('node', [BIN, ...args], { reject: false, cwd: REPO, stdin: 'ignore', ...opts, env: { ...process.env, ...(opts.env ?? {}) } });
}
