import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { describe, expect, it } from 'vitest';
import { StateLock } from '../../src/core/lock.js';
import { REPO } from '../helpers/cli.js';

const LOCK_JS = path.join(REPO, 'dist/core/lock.js');

/** Another harness: a process that takes the lock of `dir` as `command`, says so, and holds it for `holdMs`. */
function holder(dir: string, command: string, holdMs = 600_000): ResultPromise<{ reject: false }> {
  const script = `
    const { StateLock } = await import(${JSON.stringify(LOCK_JS)});
    try { await StateLock.acquire(${JSON.stringify(dir)}, ${JSON.stringify(command)}); console.log('got'); }
    catch (e) { console.log('busy'); process.exit(0); }
    setTimeout(() => process.exit(0), ${holdMs});`;
  return execa('node', ['--input-type=module', '-e', script], { reject: false });
}

const firstLine = (p: ResultPromise<{ reject: false }>) =>
  new Promise<string>((resolve) => p.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));
const lockText = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'harness.lock'), 'utf8')) as { pid: number; command: string };

describe('state lock (flock)', () => {
  it('refuses a second harness naming the holder; after the holder is SIGKILLed the lock is free and names its new holder', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-lock-'));
    const h = holder(dir, 'start');
    try {
      expect(await firstLine(h)).toBe('got');
      await expect(StateLock.acquire(dir, 'stop')).rejects.toThrow(new RegExp(`another ultracloud \\(pid ${h.pid}, "start"`));
    } finally {
      h.kill('SIGKILL');
      await h;
    }
    // The holder's flock child exits when its parent's pipe closes: moments later, not at once.
    const lock = await StateLock.acquire(dir, 'stop', { waitMs: 10_000 });
    try {
      expect(lockText(dir)).toMatchObject({ pid: process.pid, command: 'stop' });
    } finally {
      await lock.release();
    }
    const again = await StateLock.acquire(dir, 'clean'); // released means free
    await again.release();
  });

  it('releasing is awaited to the end even when nothing else keeps the process alive', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-lock-'));
    const script = `
      const { StateLock } = await import(${JSON.stringify(LOCK_JS)});
      const lock = await StateLock.acquire(${JSON.stringify(dir)}, 'stop');
      await lock.release();
      console.log('released');`;
    const r = await execa('node', ['--input-type=module', '-e', script], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0); // 13 = the loop emptied while release() was still pending
    expect(r.stdout).toBe('released');
  });

  it('exactly one of twelve concurrent acquirers holds a lock whose file names a dead process', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-lock-'));
    writeFileSync(path.join(dir, 'harness.lock'), JSON.stringify({ pid: 999_999, command: 'crashed', since: 'long ago' }));
    const racers = Array.from({ length: 12 }, (_, i) => holder(dir, `racer-${i}`, 20_000));
    try {
      const answers = await Promise.all(racers.map(firstLine));
      expect(answers.filter((a) => a === 'got')).toHaveLength(1);
      expect(answers.filter((a) => a === 'busy')).toHaveLength(11);
    } finally {
      for (const r of racers) r.kill('SIGKILL');
      await Promise.all(racers);
    }
  }, 30_000);
});
