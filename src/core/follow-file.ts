import { constants, promises as fs, openSync, watch } from 'node:fs';
import net from 'node:net';
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

export interface FollowOptions {
  offset?: number;
  deadline: number;
  /** False once the writer is gone for good (QEMU exited): one last read, then FollowEnded('ended'). */
  alive: () => Promise<boolean>;
  what: string;
  signal?: AbortSignal;
}

/** Reads are at most this big, so a multi-GiB log is followed in bounded memory. */
const CHUNK = 1 << 20;

/**
 * Follow a file a guest (or a serial-over-LAN session) writes, from `offset`, handing each new
 * chunk to `onText` until it returns a value (or `signal` aborts: undefined). Regular files wake on
 * inotify; a FIFO is read as a non-blocking stream, so neither an absent writer nor the deadline
 * ever blocks the process. The 1 s tick only re-checks `alive` and the deadline.
 */
export async function followFile<T>(file: string, onText: (text: string) => T | undefined, o: FollowOptions): Promise<T | undefined> {
  const st = await fs.stat(file).catch(() => null);
  if (st?.isFIFO()) return followFifo(file, onText, o);
  return followRegular(file, onText, o);
}

async function followRegular<T>(file: string, onText: (text: string) => T | undefined, o: FollowOptions): Promise<T | undefined> {
  let offset = o.offset ?? 0;
  let wake: (() => void) | null = null;
  const watcher = watch(path.dirname(file), (_e, name) => {
    if (name === path.basename(file)) wake?.();
  });
  /** Everything new since `offset`, chunk by chunk; the first hit wins. */
  const drain = async (): Promise<T | undefined> => {
    const fh = await fs.open(file, 'r').catch(() => null);
    if (!fh) return undefined;
    try {
      const { size } = await fh.stat();
      if (size < offset) offset = 0; // truncated: start over
      const buf = Buffer.alloc(Math.min(CHUNK, Math.max(size - offset, 0)));
      while (offset < size) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - offset), offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        const hit = onText(buf.subarray(0, bytesRead).toString('utf8'));
        if (hit !== undefined) return hit;
      }
      return undefined;
    } finally {
      await fh.close();
    }
  };
  try {
    for (;;) {
      const hit = await drain();
      if (hit !== undefined) return hit;
      if (o.signal?.aborted) return undefined;
      if (!(await o.alive())) {
        // One last read: the guest may have written its final words just before exiting.
        const last = await drain();
        if (last !== undefined) return last;
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

/**
 * A FIFO (a serial-over-LAN session piped in): opened read-write and non-blocking, so the open
 * never waits for a writer and a writer that comes and goes is not an end; read as a stream until
 * a hit, the deadline or abort.
 */
async function followFifo<T>(file: string, onText: (text: string) => T | undefined, o: FollowOptions): Promise<T | undefined> {
  const fd = openSync(file, constants.O_RDWR | constants.O_NONBLOCK);
  const sock = new net.Socket({ fd, readable: true, writable: false });
  try {
    return await new Promise<T | undefined>((resolve, reject) => {
      const tick = setInterval(() => {
        if (o.signal?.aborted) resolve(undefined);
        else if (Date.now() > o.deadline) reject(new FollowEnded('deadline', `${o.what}: not seen by the deadline`));
      }, 1000);
      const finish = (f: () => void) => {
        clearInterval(tick);
        f();
      };
      o.signal?.addEventListener('abort', () => finish(() => resolve(undefined)), { once: true });
      sock.on('data', (d: Buffer) => {
        const hit = onText(d.toString('utf8'));
        if (hit !== undefined) finish(() => resolve(hit));
      });
      sock.on('error', (e) => finish(() => reject(e)));
    });
  } finally {
    sock.destroy(); // closes the fd
  }
}

/** Wait for `marker` anywhere in the text written after `offset` (matches across chunk boundaries). */
export async function waitForText(file: string, marker: string, o: FollowOptions): Promise<void> {
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

/** The last `max` bytes of a stream of text chunks: a bounded copy of a log as evidence. */
export class TextTail {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes dropped from the front to stay within `max`. */
  dropped = 0;

  constructor(private readonly max: number) {}

  push(text: string): void {
    const b = Buffer.from(text, 'utf8');
    this.chunks.push(b);
    this.size += b.length;
    while (this.size > this.max && this.chunks.length) {
      const first = this.chunks[0]!;
      const over = this.size - this.max;
      if (first.length <= over) {
        this.chunks.shift();
        this.size -= first.length;
        this.dropped += first.length;
      } else {
        this.chunks[0] = first.subarray(over);
        this.size -= over;
        this.dropped += over;
      }
    }
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}
