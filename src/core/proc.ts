import { promises as fs } from 'node:fs';

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The argv of a live pid, or null (gone, or not ours to read). */
export async function pidCmdline(pid: number): Promise<string[] | null> {
  try {
    const raw = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter(Boolean);
  } catch {
    return null;
  }
}

/** Read a pidfile and confirm the pid still runs the process we started (argv mentions `marker`). */
export async function ownedPid(pidfile: string, marker: string): Promise<number | null> {
  let pid: number;
  try {
    pid = Number((await fs.readFile(pidfile, 'utf8')).trim());
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 1) return null;
  const argv = await pidCmdline(pid);
  return argv?.some((a) => a.includes(marker)) ? pid : null;
}

/** Resolves when the pid is gone, or false after `ms`. Polls /proc: a foreign pid gives no exit event. */
export async function waitPidExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!pidAlive(pid) || (await isZombie(pid))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !pidAlive(pid);
}

async function isZombie(pid: number): Promise<boolean> {
  try {
    return /\) Z /.test(await fs.readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; by pid only. */
export async function terminate(pid: number, graceMs = 5000): Promise<'term' | 'kill' | 'gone'> {
  if (!pidAlive(pid)) return 'gone';
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return 'gone';
  }
  if (await waitPidExit(pid, graceMs)) return 'term';
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* exited meanwhile */
  }
  await waitPidExit(pid, 5000);
  return 'kill';
}
