import { promises as fs, watch } from 'node:fs';
import path from 'node:path';

export class FollowEnded extends Error {
  override name = 'FollowEnded';
  constructor(
    readonly reason: 'deadline' | 'ended',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Follow a file a guest writes (serial console, virtio-serial log) from `offset`, handing
 * each new chunk to `onText` until it returns a value (or `signal` aborts: undefined). Wakes on
 * inotify and on abort, not on a sleep; the 1 s tick only re-checks `alive` (QEMU exited) and the deadline.
 */
export async function followFile<T>(
  file: string,
  onText: (text: string) => T | undefined,
  o: { offset?: number; deadline: number; alive: () => Promise<boolean>; what: string; signal?: AbortSignal },
): Promise<T | undefined> {
  let offset = o.offset ?? 0;
  let wake: (() => void) | null = null;
  const watcher = watch(path.dirname(file), (_e, name) => {
    if (name === path.basename(file)) wake?.();
  });
  try {
    for (;;) {
      const fh = await fs.open(file, 'r').catch(() => null);
      if (fh) {
        try {
          const { size } = await fh.stat();
          if (size < offset) offset = 0; // truncated: start over
          if (size > offset) {
            const buf = Buffer.alloc(size - offset);
            await fh.read(buf, 0, buf.length, offset);
            offset = size;
            const hit = onText(buf.toString('utf8'));
            if (hit !== undefined) return hit;
          }
        } finally {
          await fh.close();
        }
      }
      if (o.signal?.aborted) return undefined;
      if (!(await o.alive())) {
        // One last read: the guest may have written its final words just before exiting.
        const rest = await fs.readFile(file).then(
          (b) => b.subarray(offset).toString('utf8'),
          () => '',
        );
        const hit = rest ? onText(rest) : undefined;
        if (hit !== undefined) return hit;
        throw new FollowEnded('ended', `${o.what}: the guest exited`);
      }
      if (Date.now() > o.deadline) throw new FollowEnded('deadline', `${o.what}: not seen by the deadline`);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          o.signal?.removeEventListener('abort', done);
          resolve();
        };
        const t = setTimeout(done, 1000);
        wake = done;
        o.signal?.addEventListener('abort', done, { once: true });
      });
      wake = null;
    }
  } finally {
    watcher.close();
  }
}

/** Wait for `marker` anywhere in the text written after `offset` (matches across chunk boundaries). */
export async function waitForText(
  file: string,
  marker: string,
  o: { offset?: number; deadline: number; alive: () => Promise<boolean>; what: string },
): Promise<void> {
  let carry = '';
  await followFile(
    file,
    (text) => {
      const hay = carry + text;
      if (hay.includes(marker)) return true;
      carry = hay.slice(-marker.length);
      return undefined;
    },
    o,
  );
}
