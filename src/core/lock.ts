import { type ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MissingTool, UsageError } from './errors.js';

export const LOCK_FILE = 'harness.lock';

interface LockInfo {
  pid: number;
  command: string;
  since: string;
}

/**
 * One harness per state dir, by flock(2) on `<dir>/harness.lock`: the kernel grants it to exactly
 * one process under any interleaving and drops it when the holder dies, so there is no stale
 * lock to take over. Node has no flock, so util-linux `flock` holds it on our behalf, in a child
 * that lives exactly as long as our stdin pipe to it: SIGKILL of the harness closes the pipe,
 * the child exits, the lock is free. The file's text names the holder for the error message.
 */
export class StateLock {
  private constructor(
    readonly file: string,
    private readonly holder: ChildProcess,
  ) {}

  /**
   * Take the lock of `dir`, or fail (exit 2) naming its holder. With `waitMs`, wait that long for
   * the holder to finish first (two builds of one image cache), saying who is awaited.
   */
  static async acquire(dir: string, command: string, o: { waitMs?: number; onWait?: (holder: string) => void } = {}): Promise<StateLock> {
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, LOCK_FILE);
    // Opening (not truncating) the file first: flock needs it to exist, and a holder's text must survive.
    await (await fs.open(file, 'a')).close();
    let got = await flock(file, ['--nonblock']);
    if (got.result === 'busy' && o.waitMs) {
      o.onWait?.(await holderOf(file));
      got = await flock(file, ['--wait', String(Math.ceil(o.waitMs / 1000))]);
    }
    if (got.result === 'busy')
      throw new UsageError(`another ultracloud (${await holderOf(file)}) is using ${dir}; wait for it or stop it first`);
    const child = got.child;
    child.unref();
    (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    const info: LockInfo = { pid: process.pid, command, since: new Date().toISOString() };
    await fs.writeFile(file, `${JSON.stringify(info)}\n`);
    return new StateLock(file, child);
  }

  async release(): Promise<void> {
    if (this.holder.exitCode !== null || this.holder.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.holder.once('exit', () => resolve()));
    this.holder.ref(); // keep the loop alive until it exits: this may be the last thing the CLI waits for
    this.holder.stdin?.end(); // cat sees EOF, flock exits, the kernel drops the lock
    await exited;
  }
}

/** util-linux flock holding `file` for as long as our pipe to its `cat` stays open. */
async function flock(file: string, mode: string[]): Promise<{ result: 'locked'; child: ChildProcess } | { result: 'busy' }> {
  const child = spawn(
    'flock',
    ['--exclusive', ...mode, '--conflict-exit-code', '75', file, 'sh', '-c', 'echo locked; exec cat >/dev/null'],
    {
      stdio: ['pipe', 'pipe', 'ignore'],
      detached: true, // its own process group: a terminal's Ctrl-C must not free the lock while we clean up
    },
  );
  const got = await new Promise<'locked' | 'busy' | Error>((resolve) => {
    child.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ENOENT' ? new MissingTool('flock', 'util-linux') : e));
    child.stdout?.once('data', () => resolve('locked'));
    child.once('exit', (code) => resolve(code === 75 ? 'busy' : new Error(`flock ${file} exited ${code}`)));
  });
  if (got instanceof Error) throw got;
  return got === 'locked' ? { result: 'locked', child } : { result: 'busy' };
}

async function holderOf(file: string): Promise<string> {
  const h = await readLock(file);
  return h ? `pid ${h.pid}, "${h.command}", since ${h.since}` : 'a process that has not written its name yet';
}

async function readLock(file: string): Promise<LockInfo | null> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as LockInfo;
  } catch {
    return null;
  }
}
