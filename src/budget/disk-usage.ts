import { promises as fs } from 'node:fs';
import path from 'node:path';

/** Bytes on disk (st_blocks, so sparse qcow2 files count what they use) without following symlinks. */
export async function diskUsage(p: string): Promise<number> {
  let st: Awaited<ReturnType<typeof fs.lstat>>;
  try {
    st = await fs.lstat(p);
  } catch {
    return 0;
  }
  let total = st.blocks * 512;
  if (st.isDirectory()) {
    const entries = await fs.readdir(p).catch(() => [] as string[]);
    for (const e of entries) total += await diskUsage(path.join(p, e));
  }
  return total;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
