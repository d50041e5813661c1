import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIB } from '../helpers/control-apis.js';

/**
 * The demo web app the inner guest ships, run as the guest runs it (busybox's sh, nc, sed: the
 * same Debian busybox-static the initramfs is built from), one HTTP request per run as `nc -ll -e`
 * gives it. Its counter and snapshot store here answer as flaredb-http and a presigned S3 PUT
 * do, through the lab's own HTTP helper (the lanes run it against the real ones).
 */
const WEBAPP = path.join(LIB, 'inner-guest/webapp');
const require = createRequire(import.meta.url);
const { serve } = require(`${LIB}/http-json.js`) as { serve: (name: string, port: number, routes: Record<string, unknown>) => http.Server };
const dir = mkdtempSync(path.join(tmpdir(), 'uc-webapp-'));
const counter = new Map<string, number>();
const puts: { host: string; url: string; body: string }[] = [];
let failPuts = false;
let server: http.Server;
let env: Record<string, string>;

beforeAll(async () => {
  // The lab's own HTTP helper, answering after a delay as a real store does: the app's requests
  // must get their answers even though its nc half-closes right after sending.
  const later = <T>(v: T) => new Promise<T>((r) => setTimeout(() => r(v), 200));
  server = serve('store', 0, {
    'GET /v1/kv/:key': async (_r: unknown, p: { key: string }) =>
      later(counter.has(p.key) ? [200, { key: p.key, value: String(counter.get(p.key)) }] : [404, { error: 'not found' }]),
    'POST /v1/kv/:key/increment': async (_r: unknown, p: { key: string }) => {
      counter.set(p.key, (counter.get(p.key) ?? 0) + 1);
      return later([200, { key: p.key, value: String(counter.get(p.key)) }]);
    },
    'PUT /snaps/state.json': async (req: http.IncomingMessage, _p: unknown, body: unknown) => {
      if (failPuts) return later([403, { error: 'SignatureDoesNotMatch' }]);
      puts.push({ host: req.headers.host ?? '', url: req.url ?? '', body: JSON.stringify(body) });
      return later([200, {}]);
    },
  });
  await new Promise<void>((ok) => (server.listening ? ok() : server.once('listening', () => ok())));
  const base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  writeFileSync(
    path.join(dir, 'volume.conf'),
    `webapp=1\ncounter_url=http://${base}/v1/kv/demo-visits\nsnapshot_url=http://${base}/snaps/state.json?X-Amz-Signature=abc&X-Amz-Expires=60\n`,
  );
  // The guest's userland: busybox applets first on PATH.
  const bin = path.join(dir, 'bin');
  await execa('mkdir', [bin]);
  for (const applet of ['sh', 'nc', 'sed', 'tr', 'head', 'cut', 'cat', 'date', 'hostname'])
    symlinkSync('/bin/busybox', path.join(bin, applet));
  env = { PATH: `${bin}:/usr/bin:/bin`, WEBAPP_CONF: path.join(dir, 'volume.conf'), WEBAPP_STATE: dir };
});
afterAll(() => {
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One request through the app, as nc hands it a connection: the status line, headers and body. */
async function ask(request: string) {
  const r = await execa('busybox', ['sh', WEBAPP], { input: request, env, extendEnv: false, timeout: 20_000 });
  const [head, body] = r.stdout.split('\r\n\r\n');
  return { status: head!.split('\r\n')[0]!, body: body ?? '' };
}

describe('the demo web app (inner guest)', () => {
  it('shows 0 visits before any; each POST /visit adds one to the counter and PUTs a snapshot with the count', async () => {
    expect(JSON.parse((await ask('GET /state HTTP/1.1\r\nHost: x\r\n\r\n')).body)).toMatchObject({ visits: 0, snapshots: 0 });
    for (const n of [1, 2]) {
      const r = await ask('POST /visit HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n');
      expect(r.status).toBe('HTTP/1.0 200 OK');
      expect(JSON.parse(r.body)).toMatchObject({ visits: n, snapshots: n });
    }
    expect(counter.get('demo-visits')).toBe(2);
    expect(puts.map((p) => JSON.parse(p.body).visits)).toEqual([1, 2]);
    // Signed for the proxy's address: the Host header and the query reach the store untouched.
    expect(puts[0]).toMatchObject({
      host: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      url: '/snaps/state.json?X-Amz-Signature=abc&X-Amz-Expires=60',
    });
  });

  it('serves a page with the counter and a Visit button that POSTs /visit', async () => {
    const r = await ask('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(r.status).toBe('HTTP/1.0 200 OK');
    expect(r.body).toContain('<h1>Visits: <span id="visits">2</span></h1>');
    expect(r.body).toContain('<button id="visit">Visit</button>');
    expect(r.body).toContain("fetch('/visit', { method: 'POST' })");
  });

  it('answers 502 naming the store when a snapshot is refused, and 404 naming its routes', async () => {
    failPuts = true;
    const r = await ask('POST /visit HTTP/1.1\r\n\r\n');
    failPuts = false;
    expect(r.status).toBe('HTTP/1.0 502 Bad Gateway');
    expect(JSON.parse(r.body).error).toMatch(/^the snapshot PUT to 127\.0\.0\.1:\d+\/snaps answered 403: \{error:SignatureDoesNotMatch\}$/);
    const nf = await ask('GET /nope HTTP/1.1\r\n\r\n');
    expect(nf.status).toBe('HTTP/1.0 404 Not Found');
    expect(JSON.parse(nf.body).error).toBe('no route GET /nope (GET /, GET /state, POST /visit)');
  });
});
