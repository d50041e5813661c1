import { randomBytes } from 'node:crypto';
import { promises as fs, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { withPath } from './errors.js';

function tempName(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Write to a temp file beside the target, then rename: readers never see a half-written file. */
export async function writeFileAtomic(target: string, data: string | Uint8Array, o: { mode?: number } = {}): Promise<void> {
  const tmp = tempName(target);
  try {
    await fs.writeFile(tmp, data, { mode: o.mode });
    await fs.rename(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { force: true }); // a full disk must not also leave the temp file behind
    throw withPath(err, target);
  }
}

/** Synchronous variant for signal handlers, where the event loop may not run again. */
export function writeFileAtomicSync(target: string, data: string | Uint8Array): void {
  const tmp = tempName(target);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw withPath(err, target);
  }
}

/** Point `link` at `target` by making a temp symlink and renaming it over the old one (kola's `latest`). */
export async function symlinkAtomic(target: string, link: string): Promise<void> {
  const tmp = tempName(link);
  await fs.symlink(target, tmp);
  await fs.rename(tmp, link);
}
