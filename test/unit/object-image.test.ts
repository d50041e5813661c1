import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlApis, LIB, startControlApis } from '../helpers/control-apis.js';

/**
 * VM images kept as objects: plasmavmc's API records each file's digest when a tenant imports
 * an http:// URL (a presigned lightningstor GET), and a worker fetching the object verifies every
 * byte against it. The object store here is a plain HTTP server: what is tested is what the
 * shipped code does with the bytes and the answers (the lab's Swift serves them in matrix).
 */
const require = createRequire(import.meta.url);
const { fetchVerified } = require(`${LIB}/object-image.js`) as {
  fetchVerified: (url: string, dst: string, want: { sha256: string; bytes: number }, what: string) => Promise<void>;
};

const objects = new Map<string, Buffer>([
  ['/images/vmlinuz', Buffer.from('kernel bytes '.repeat(5000))],
  ['/images/initrd.img', Buffer.from('initrd bytes')],
]);
const digest = (b: Buffer) => ({ sha256: createHash('sha256').update(b).digest('hex'), bytes: b.length });
let store: http.Server;
let base: string;
let apis: ControlApis;
let token: string;
const dir = mkdtempSync(path.join(tmpdir(), 'object-image-'));

beforeAll(async () => {
  store = http.createServer((req, res) => {
    const body = objects.get((req.url ?? '').split('?')[0]!);
    res.writeHead(body ? 200 : 404).end(body ?? 'NoSuchKey');
  });
  await new Promise<void>((ok) => store.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(store.address() as AddressInfo).port}`;
  apis = await startControlApis();
  token = await apis.token('tenant-a');
}, 60_000);
afterAll(async () => {
  await apis?.stop();
  store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const importImage = async (body: unknown) => {
  const r = await fetch(`${apis.plasmavmc}/v1/images`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

describe('VM images from object URLs', () => {
  it("the API records each object's digest at import", async () => {
    const r = await importImage({ name: 'obj', kernel: `${base}/images/vmlinuz?X-Amz-Signature=s`, initrd: `${base}/images/initrd.img` });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.digests).toEqual({ kernel: digest(objects.get('/images/vmlinuz')!), initrd: digest(objects.get('/images/initrd.img')!) });
  });

  it('an object that does not answer is a 422 naming the field and the URL without its signature, and no image is kept', async () => {
    const before = (await (
      await fetch(`${apis.plasmavmc}/v1/images`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as unknown;
    const r = await importImage({
      name: 'gone',
      kernel: `${base}/images/vmlinuz`,
      initrd: `${base}/images/missing?X-Amz-Signature=secret`,
    });
    expect(r.status).toBe(422);
    expect(r.body.error).toBe(`initrd: ${base}/images/missing answered HTTP 404`);
    const after = (await (await fetch(`${apis.plasmavmc}/v1/images`, { headers: { authorization: `Bearer ${token}` } })).json()) as unknown;
    expect(after).toEqual(before);
  });

  it('a worker keeps fetched bytes only when they match the digest; a replaced object is refused, naming both digests', async () => {
    const kernel = objects.get('/images/vmlinuz')!;
    const want = digest(kernel);
    await fetchVerified(`${base}/images/vmlinuz`, path.join(dir, 'vmlinuz'), want, 'image i1: the kernel');
    expect(readFileSync(path.join(dir, 'vmlinuz'))).toEqual(kernel);
    objects.set('/images/vmlinuz', Buffer.from('someone else uploaded this'));
    await expect(
      fetchVerified(`${base}/images/vmlinuz?X-Amz-Signature=s`, path.join(dir, 'k2'), want, 'image i1: the kernel'),
    ).rejects.toThrow(
      `image i1: the kernel from ${base}/images/vmlinuz is 26 bytes with sha256 ${digest(objects.get('/images/vmlinuz')!).sha256}, but was imported as ${want.bytes} bytes with sha256 ${want.sha256}: the object changed after the import`,
    );
    expect(() => readFileSync(path.join(dir, 'k2.part'))).toThrow(/ENOENT/);
  });

  it('a file that cannot be written fails the fetch naming it (the agent lives on)', async () => {
    const dst = path.join(dir, 'no-such-dir', 'initrd.img');
    await expect(
      fetchVerified(`${base}/images/initrd.img`, dst, digest(objects.get('/images/initrd.img')!), 'image i1: the initrd'),
    ).rejects.toThrow(`writing ${dst}.part: ENOENT`);
  });
});
