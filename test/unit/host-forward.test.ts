import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkListenPort, listForwards, startForward, stopForward } from '../../src/cluster/host-forward.js';
import { http } from '../../src/probes/http.js';
import { processesMentioning } from '../helpers/procs.js';

/**
 * Host forwards with the real system `ssh` against an in-process SSH server (ssh2's Server) that
 * carries direct-tcpip channels as sshd does: the forward outlives its starter, `status` finds it
 * by pid, `stop` ends it, and every failed start names ssh's own words and leaves nothing.
 */
const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-forward-'));
const state = path.join(dir, 'state');
const clientKey = ssh2.utils.generateKeyPairSync('ed25519');
const hostKey = ssh2.utils.generateKeyPairSync('ed25519');
const keyFile = path.join(dir, 'id');
writeFileSync(keyFile, clientKey.private, { mode: 0o600 });

let sshPort = 0;
let appPort = 0;
const sshd = new ssh2.Server({ hostKeys: [hostKey.private] }, (client) => {
  client.on('authentication', (ctx) => (ctx.method === 'publickey' ? ctx.accept() : ctx.reject(['publickey'])));
  client.on('error', () => {});
  client.on('tcpip', (accept, reject, info) => {
    const sock = net.connect(info.destPort, info.destIP);
    sock.once('connect', () => {
      const ch = accept();
      ch.pipe(sock).pipe(ch);
    });
    sock.once('error', () => reject());
  });
});
const app = createHttpServer((req, res) => res.end(JSON.stringify({ path: req.url })));

/** A node as startForward uses it: its name and the system ssh's argv into it, pinned to its host key. */
const node = (port: number) => ({
  name: 'node05',
  sshArgv: async (options: string[] = []) => {
    const knownHosts = path.join(dir, 'known_hosts');
    writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey.public}\n`);
    const opts = [`UserKnownHostsFile=${knownHosts}`, 'StrictHostKeyChecking=yes', 'IdentitiesOnly=yes', ...options];
    return ['-i', keyFile, '-p', String(port), ...opts.flatMap((o) => ['-o', o]), 'root@127.0.0.1'];
  },
});

const answers = async (url: string) => {
  const r = await http('GET', `${url}state`);
  if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
};

beforeAll(async () => {
  await new Promise<void>((r) => sshd.listen(0, '127.0.0.1', r));
  sshPort = (sshd.address() as net.AddressInfo).port;
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  appPort = (app.address() as net.AddressInfo).port;
});
afterEach(async () => {
  for (const f of await listForwards(state)) await stopForward(state, f.name);
});
afterAll(() => {
  sshd.close();
  app.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('host forwards (system ssh -L)', () => {
  it('serves the target at a host URL after the start returns, is listed with its pid, and stop ends it and removes its files', async () => {
    const f = await startForward(state, {
      name: 'webapp',
      via: node(sshPort),
      target: { host: '127.0.0.1', port: appPort },
      listenPort: 0,
      check: answers,
    });
    expect(f.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect((await http('GET', `${f.url}state`)).json).toEqual({ path: '/state' });
    const [listed] = await listForwards(state);
    expect(listed).toMatchObject({ name: 'webapp', running: true, pid: f.pid, via: 'node05', target: { port: appPort } });
    await expect(checkListenPort(state, f.listen.port, 'other')).rejects.toThrow(
      `port ${f.listen.port} on 127.0.0.1 is held by forward "webapp"`,
    );
    await checkListenPort(state, f.listen.port, 'webapp'); // the same forward is replaced, not refused

    writeFileSync(path.join(state, 'forwards', 'webapp', 'forward.json'), '{"name": "webapp", "url"'); // cut short
    expect(await listForwards(state)).toEqual([expect.objectContaining({ name: 'webapp', running: true, pid: f.pid })]);
    expect(await stopForward(state, 'webapp')).toBe('term');
    expect(await listForwards(state)).toEqual([]);
    expect(existsSync(path.join(state, 'forwards', 'webapp'))).toBe(false);
    expect(processesMentioning(state)).toEqual([]);
    await expect(http('GET', `${f.url}state`, { timeoutMs: 2000 })).rejects.toThrow(/ECONNREFUSED|fetch failed/);
  });

  it('a target that refuses: the check fails with what ssh logged, and nothing is left running', async () => {
    const closed = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => closed.once('listening', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const start = startForward(state, {
      name: 'webapp',
      via: node(sshPort),
      target: { host: '127.0.0.1', port },
      listenPort: 0,
      check: answers,
    });
    await expect(start).rejects.toThrow(
      /GET http:\/\/127\.0\.0\.1:\d+\/state: [^\n]+\n\(the forward's ssh through node05 to 127\.0\.0\.1:\d+ said: .*open failed/s,
    );
    expect(await listForwards(state)).toEqual([]);
    expect(processesMentioning(state)).toEqual([]);
  });

  it('ssh that cannot get in exits at once, and the error is its own log (not a deadline)', async () => {
    const t0 = Date.now();
    const start = startForward(state, {
      name: 'webapp',
      via: node(1),
      target: { host: '127.0.0.1', port: appPort },
      listenPort: 0,
      check: answers,
    });
    await expect(start).rejects.toThrow(
      /forward webapp: ssh through node05 exited 255 before .* listened; ssh said: .*port 1: Connection refused/,
    );
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(processesMentioning(state)).toEqual([]);
  });

  it('bad input changes nothing: a busy listen port is a usage error naming it; a target that is not an address is refused', async () => {
    const busy = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => busy.once('listening', r));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      await expect(checkListenPort(state, port, 'webapp')).rejects.toThrow(`port ${port} on 127.0.0.1 is busy (EADDRINUSE)`);
    } finally {
      busy.close();
    }
    await expect(
      startForward(state, { name: 'webapp', via: node(sshPort), target: { host: 'x;rm -rf /', port: 1 }, listenPort: 0, check: answers }),
    ).rejects.toThrow('target x;rm -rf / is not an IPv4 address');
    expect(await listForwards(state)).toEqual([]);
  });
});
