import { promises as fs } from 'node:fs';
import { execa } from 'execa';
import { onCleanup } from './shutdown.js';

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

/**
 * Read a pidfile and confirm the pid still runs the process we started: its argv names this very
 * pidfile after the flag that made it (QEMU `-pidfile P`, vde_switch `--pidfile P`), or `named`,
 * a file of its own the harness gave it (ssh `-E <log>`). A recycled pid whose command line merely
 * mentions the path is not ours.
 */
export async function ownedPid(pidfile: string, flag = '-pidfile', named = pidfile): Promise<number | null> {
  let pid: number;
  try {
    pid = Number((await fs.readFile(pidfile, 'utf8')).trim());
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 1) return null;
  const argv = await pidCmdline(pid);
  const real = (p: string) => fs.realpath(p).catch(() => p);
  const want = await real(named);
  for (const [i, a] of (argv ?? []).entries())
    if (a === flag && argv![i + 1] !== undefined && (await real(argv![i + 1]!)) === want) return pid;
  return null;
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

/** True while any process of the group `pgid` lives. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGTERM to a whole process group, SIGKILL after `graceMs`: a builder and everything it started. */
export async function terminateGroup(pgid: number, graceMs = 5000): Promise<void> {
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-pgid, s);
    } catch {
      /* already gone */
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (groupAlive(pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (groupAlive(pgid)) signal('SIGKILL');
}

/**
 * Run a long tool in its own process group (detached), so that on any exit path of the harness
 * (error, Ctrl-C, SIGTERM from a CI timeout) the tool and every process it started are stopped
 * by group id: an interrupted mmdebstrap must not leave dpkg running.
 */
export function spawnGroup(cmd: string, args: readonly string[]) {
  const child = execa(cmd, args, { all: true, reject: false, stdin: 'ignore', detached: true, cleanup: false });
  const pgid = child.pid;
  if (pgid) {
    const dispose = onCleanup(`stop ${cmd} (process group ${pgid})`, () => terminateGroup(pgid));
    void child.finally(dispose);
  }
  return child;
}
