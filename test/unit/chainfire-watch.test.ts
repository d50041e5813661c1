import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';
import { ETCD, etcdArgs, freePort, until } from '../helpers/control-apis.js';

/**
 * The lab agents' chainfire watch (the file the image ships) against a real etcd, first through a
 * proxy that can go silent as a power-cut member does: the connection stays open and nothing
 * more arrives. The watch must notice and move to the next member, and a quiet but healthy watch
 * (progress notifications) must not be dropped.
 */
const LIB = path.join(REPO, 'profiles/lab/image/overlay/usr/local/lib/ultracloud/chainfire.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-watch-'));
const procs: ResultPromise[] = [];
let etcd = '';
let frozen = false;
const sockets: net.Socket[] = [];
const proxy = net.createServer((down) => {
  const up = net.connect(Number(new URL(etcd).port), '127.0.0.1');
  sockets.push(down, up);
  // Frozen: bytes are swallowed, the connections stay open (a member that lost power).
  down.on('data', (d) => frozen || up.write(d));
  up.on('data', (d) => frozen || down.write(d));
  for (const [a, b] of [
    [down, up],
    [up, down],
  ] as const)
    a.on('error', () => b.destroy()).on('close', () => b.destroy());
});

async function put(key: string) {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const r = await fetch(`${etcd}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: b64(key), value: b64('1') }) });
  expect(r.ok).toBe(true);
}

/** A watcher in its own process (its loops never end): each onChange is a line on stdout. */
function watcher(endpoints: string[]) {
  const p = execa(
    'node',
    [
      '-e',
      `const { Chainfire } = require(${JSON.stringify(LIB)});
       new Chainfire(${JSON.stringify(endpoints)}).watch(['/t/'], () => console.log('change'), { stallMs: 3000 });`,
    ],
    { reject: false },
  );
  procs.push(p);
  let [changes, output] = [0, ''];
  p.stdout?.on('data', (d: Buffer) => {
    changes += String(d)
      .split('\n')
      .filter((l) => l === 'change').length;
  });
  p.stderr?.on('data', (d: Buffer) => {
    output += String(d);
  });
  return { changes: () => changes, output: () => output };
}

async function eventually(what: string, ms: number, ok: () => boolean) {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  const [client, peer, p] = await Promise.all([1, 2, 3].map(freePort));
  etcd = `http://127.0.0.1:${client}`;
  procs.push(execa(ETCD, etcdArgs(dir, client!, peer!, ['--experimental-watch-progress-notify-interval', '1s']), { reject: false }));
  await until('etcd', `${etcd}/health`);
  await new Promise<void>((ok) => proxy.listen(p, '127.0.0.1', ok));
}, 60_000);

afterAll(async () => {
  for (const s of sockets) s.destroy();
  proxy.close();
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs);
  rmSync(dir, { recursive: true, force: true });
});

describe('chainfire watch', () => {
  it('moves to the next member when its member goes silent, and hears changes again', async () => {
    const proxied = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
    const w = watcher([proxied, etcd]);
    // Its stream is up once a put is heard (writes before that are not events to it).
    for (let i = 0; w.changes() === 0; i++) {
      if (i === 50) throw new Error(`no change heard through the member: ${w.output()}`);
      await put('/t/a');
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 500)); // the last puts' events

    // Quiet but alive: progress notifications keep the stream, so no reconnect (which would call onChange).
    const idle = w.changes();
    await new Promise((r) => setTimeout(r, 5000));
    expect(w.changes(), w.output()).toBe(idle);

    frozen = true;
    const before = w.changes();
    await put('/t/b'); // missed by the silent stream
    await eventually('the watch moving to the next member', 8000, () => w.changes() > before);
    expect(w.output()).toMatch(/silent for 3 s; trying the next member/);
    const moved = w.changes();
    await put('/t/c');
    await eventually('a change heard through the next member', 5000, () => w.changes() > moved);
  }, 40_000);
});
