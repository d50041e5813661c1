import net from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

/** The guest's ExecStartPost readiness wait (the file the image ships), run on this host's /proc. */
const script = path.join(REPO, 'profiles/lab/image/overlay/usr/local/lib/ultracloud/wait-listening');
const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});
const listen = (host: string) =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, host, () => resolve((s.address() as net.AddressInfo).port));
    servers.push(s);
  });

describe('wait-listening', () => {
  it('returns at once for ports that listen (IPv4 and IPv6)', async () => {
    const [v4, v6] = [await listen('127.0.0.1'), await listen('::1')];
    const r = await execa(script, [String(v4), String(v6)], { timeout: 10_000 });
    expect(r.exitCode).toBe(0);
  });

  it('keeps waiting for a port nobody listens on, and returns once it does', async () => {
    const free = await listen('127.0.0.1');
    await new Promise((r) => servers.pop()!.close(r));
    const waiting = execa(script, [String(free)], { timeout: 15_000 });
    const early = await Promise.race([waiting.then(() => 'returned'), new Promise((r) => setTimeout(() => r('waiting'), 1500))]);
    expect(early).toBe('waiting');
    const s = net.createServer().listen(free, '127.0.0.1');
    servers.push(s);
    expect((await waiting).exitCode).toBe(0);
  });

  it('is not fooled by a connection to the port that is not a listener', async () => {
    const port = await listen('127.0.0.1');
    const client = net.connect(port, '127.0.0.1');
    await new Promise((r) => client.once('connect', r));
    servers.pop()!.close(); // the listener goes; the accepted connection stays established
    const r = await execa(script, [String(port)], { timeout: 1500, reject: false });
    client.destroy();
    expect(r.timedOut).toBe(true);
  });
});
