import { existsSync, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { UsageError } from './errors.js';

/**
 * The work root is the only place the harness deletes anything. It carries a marker written when
 * the harness first creates things in it; destructive commands refuse a directory without it,
 * and every removal is checked on real paths (symlinks resolved) and mount points.
 */
export const WORK_ROOT_MARKER = '.ultracloud-work-root';

/**
 * Create the work root if needed; every command that writes there calls this first (run records,
 * keys, the state and lane locks). The marker goes only into a directory the harness makes, or
 * finds empty (the repo's `work/` is not in git: a fresh clone's is made by its first command):
 * a directory with someone else's files never becomes deletable by accident.
 */
export async function ensureWorkRoot(workRoot: string): Promise<void> {
  const marker = path.join(workRoot, WORK_ROOT_MARKER);
  if (existsSync(marker)) return;
  await fs.mkdir(workRoot, { recursive: true });
  if ((await fs.readdir(workRoot)).length === 0)
    await fs.writeFile(
      marker,
      'Created by ultracloud: runtime state and proofs. Destructive commands act only inside a directory holding this file.\n',
    );
}

export function isHarnessWorkRoot(workRoot: string): boolean {
  return existsSync(path.join(workRoot, WORK_ROOT_MARKER));
}

function inside(parent: string, child: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);
}

/** Mount points at or below `dir` (an interrupted mmdebstrap leaves proc, sys, devpts, shm behind). */
export function mountsUnder(dir: string, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string[] {
  // Field 5 is the mount point, octal-escaped (\040 for a space).
  const points = mountinfo
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => Boolean(p))
    .map((p) => p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8))));
  return points.filter((p) => inside(dir, p));
}

/**
 * Where `target` really is, if it may be removed: its real path must lie inside the work root's
 * real path (symlinks in its parents resolved), the work root must carry the marker, and nothing
 * may be mounted under it. Throws a UsageError naming the path otherwise; null when it is absent.
 */
export async function checkRemovable(workRoot: string, target: string): Promise<{ real: string; symlink: boolean } | null> {
  const st = await fs.lstat(target).catch(() => null);
  if (!st) return null; // nothing to delete, nothing to refuse
  if (!isHarnessWorkRoot(workRoot))
    throw new UsageError(
      `refusing to delete ${target}: the work root ${workRoot} has no ${WORK_ROOT_MARKER} marker, so ultracloud did not create it (if it did, under an older version: touch ${path.join(workRoot, WORK_ROOT_MARKER)})`,
    );
  const rootReal = await fs.realpath(workRoot);
  const real = path.join(await fs.realpath(path.dirname(target)), path.basename(target));
  if (!inside(rootReal, real) || real === rootReal)
    throw new UsageError(`refusing to delete ${target}: it is at ${real}, not inside the work root ${rootReal}`);
  if (st.isSymbolicLink()) return { real, symlink: true };
  const mounted = mountsUnder(real);
  if (mounted.length)
    throw new UsageError(`refusing to delete ${target}: something is mounted under it (${mounted.join(', ')}); unmount first`);
  return { real, symlink: false };
}

/**
 * Remove `target` (recursively) after `checkRemovable`. A symlink is removed as a link, never
 * followed. `keep` names entries of `target` to leave (the lock of the harness doing the removing).
 */
export async function removeWithin(workRoot: string, target: string, o: { keep?: string[] } = {}): Promise<'removed' | 'absent'> {
  const where = await checkRemovable(workRoot, target);
  if (!where) return 'absent';
  if (where.symlink) await fs.unlink(target);
  else if (!o.keep?.length) await fs.rm(target, { recursive: true, force: true });
  else
    for (const e of await fs.readdir(target)) if (!o.keep.includes(e)) await fs.rm(path.join(target, e), { recursive: true, force: true });
  return 'removed';
}

/** Unmount everything mounted at or below `dir`, deepest first (lazily: a busy mount must not block cleanup). */
export async function unmountUnder(dir: string): Promise<string[]> {
  const real = await fs.realpath(dir).catch(() => dir);
  const points = mountsUnder(real).sort((a, b) => b.length - a.length);
  for (const p of points) await execa('umount', ['--lazy', p], { reject: false });
  return points;
}
