import { readdirSync, readFileSync } from 'node:fs';

/** Live processes whose argv mentions `needle` (e.g. a test's state dir): what a test must leave at zero. */
export function processesMentioning(needle: string): { pid: number; argv: string }[] {
  const out: { pid: number; argv: string }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ');
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (argv.includes(needle) && !/\) Z /.test(stat)) out.push({ pid: Number(d), argv });
    } catch {
      /* exited while we looked */
    }
  }
  return out;
}

export async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
