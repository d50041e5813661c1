import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UsageError } from './errors.js';
import { pidAlive, pidCmdline } from './proc.js';

interface LockInfo {
  pid: number;
  command: string;
  since: string;
}

/**
 * One harness per state dir. The lock file holds the owner's pid; a lock whose pid is gone
 * (the owner was SIGKILLed) is stale and taken over, so `stop` after a crash just works.
 */
export class StateLock {
  private constructor(private readonly file: string) {}

  static async acquire(stateDir: string, command: string): Promise<StateLock> {
    await fs.mkdir(stateDir, { recursive: true });
    const file = path.join(stateDir, 'harness.lock');
    const info: LockInfo = { pid: process.pid, command, since: new Date().toISOString() };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await fs.writeFile(file, JSON.stringify(info), { flag: 'wx' });
        return new StateLock(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = await readLock(file);
      if (holder && holder.pid !== process.pid && pidAlive(holder.pid) && (await looksLikeHarness(holder.pid))) {
        throw new UsageError(
          `another ultracloud (pid ${holder.pid}, "${holder.command}", since ${holder.since}) is using ${stateDir}; wait for it or stop it first`,
        );
      }
      await fs.rm(file, { force: true }); // stale: its owner is gone
    }
    throw new UsageError(`could not take the lock ${file}`);
  }

  async release(): Promise<void> {
    const holder = await readLock(this.file);
    if (holder?.pid === process.pid) await fs.rm(this.file, { force: true });
  }
}

async function readLock(file: string): Promise<LockInfo | null> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as LockInfo;
  } catch {
    return null;
  }
}

async function looksLikeHarness(pid: number): Promise<boolean> {
  const argv = await pidCmdline(pid);
  return argv?.some((a) => a.includes('ultracloud') || a.includes('vitest') || a.endsWith('cli.js')) === true;
}
