import { randomBytes } from 'node:crypto';
import { promises as fs, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

function tempName(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Write to a temp file beside the target, then rename: readers never see a half-written file. */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempName(target);
  await fs.writeFile(tmp, data);
  await fs.rename(tmp, target);
}

/** Synchronous variant for signal handlers, where the event loop may not run again. */
export function writeFileAtomicSync(target: string, data: string | Uint8Array): void {
  const tmp = tempName(target);
  writeFileSync(tmp, data);
  renameSync(tmp, target);
}

/** Point `link` at `target` by making a temp symlink and renaming it over the old one (kola's `latest`). */
export async function symlinkAtomic(target: string, link: string): Promise<void> {
  const tmp = tempName(link);
  await fs.symlink(target, tmp);
  await fs.rename(tmp, link);
}
