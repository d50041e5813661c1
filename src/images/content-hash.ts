import type { Hash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';

/** Files under `dir` (relative paths, sorted), so a hash over them is stable. */
export async function listFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await fs.readdir(path.join(dir, rel), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(dir, r)));
    else out.push(r);
  }
  return out;
}

/** Feed every file of a tree (path, mode, bytes or link target) into a content hash. */
export async function hashTree(h: Hash, dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const f of await listFiles(dir)) {
    const p = path.join(dir, f);
    const st = await fs.lstat(p);
    h.update(`\n${f} ${st.mode & 0o777} `);
    h.update(st.isSymbolicLink() ? await fs.readlink(p) : await fs.readFile(p));
  }
}
