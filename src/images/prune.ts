import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';

/** Builds under <images>/ by kind: `nix-<hash>`, `baremetal-<hash>` (installer ISOs), a bare hash (lab). */
export function buildKind(id: string): 'nix' | 'baremetal' | 'lab' {
  return id.startsWith('nix-') ? 'nix' : id.startsWith('baremetal-') ? 'baremetal' : 'lab';
}

/**
 * Keep the newest build and the one before it of the same kind as `newest`, plus any in use;
 * remove older ones. Other kinds are never touched (a lab build must not evict installer ISOs).
 */
export async function pruneBuilds(imagesDir: string, newest: string, inUse: Set<string>, log: Logger): Promise<void> {
  const kind = buildKind(newest);
  const builds: { id: string; mtime: number }[] = [];
  for (const id of await fs.readdir(imagesDir).catch(() => [] as string[])) {
    if (buildKind(id) !== kind) continue;
    const st = await fs.stat(path.join(imagesDir, id, 'manifest.json')).catch(() => null);
    if (st) builds.push({ id, mtime: st.mtimeMs });
  }
  builds.sort((a, b) => b.mtime - a.mtime);
  for (const [i, b] of builds.entries()) {
    if (i < 2 || b.id === newest || inUse.has(b.id)) continue;
    await fs.rm(path.join(imagesDir, b.id), { recursive: true, force: true });
    log.info(`removed old ${kind} build ${b.id} (not used by any node)`);
  }
}
