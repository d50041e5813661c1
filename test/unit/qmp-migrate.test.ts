import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { probeBootSector } from '../../src/host/accel-probe-sector.js';
import { REPO } from '../helpers/cli.js';
import { waitFor } from '../helpers/procs.js';

/**
 * The QMP client plasmavmc-agent migrates VMs with (the very file the image ships), driving a
 * real live migration between two QEMUs on this host: a tiny guest (the accelerator probe's boot
 * sector) from a source to a target started with -incoming.
 */
const require = createRequire(import.meta.url);
const { qmpSession } = require(path.join(REPO, 'profiles/lab/image/overlay/usr/local/lib/ultracloud/qmp.js')) as {
  qmpSession: (sock: string) => Promise<{ execute: (cmd: string, args?: unknown) => Promise<Record<string, unknown>>; close: () => void }>;
};

const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-qmp-'));
const procs: ResultPromise[] = [];
afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs);
  rmSync(dir, { recursive: true, force: true });
});

function qemu(name: string, extra: string[]) {
  const p = execa(
    'qemu-system-x86_64',
    [
      '-accel',
      'tcg',
      '-machine',
      'pc',
      '-m',
      '16',
      '-nodefaults',
      '-display',
      'none',
      '-drive',
      `file=${dir}/probe.img,format=raw,if=ide,snapshot=on`,
      '-qmp',
      `unix:${dir}/${name}.sock,server=on,wait=off`,
      ...extra,
    ],
    { reject: false, stdin: 'ignore' },
  );
  procs.push(p);
  return `${dir}/${name}.sock`;
}

const freePort = () =>
  new Promise<number>((ok) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => ok(port));
    });
  });

describe('qmp.js (plasmavmc-agent)', () => {
  it('live-migrates a running guest to a QEMU waiting with -incoming, and reports QEMU figures', async () => {
    writeFileSync(`${dir}/probe.img`, probeBootSector());
    const port = await freePort();
    const src = qemu('src', []);
    const dst = qemu('dst', ['-incoming', `tcp:127.0.0.1:${port}`]);
    await waitFor(() => existsSync(src) && existsSync(dst), 20_000, 'both QMP sockets');
    // As the agent does: migrate only once the target listens (a probe connection would be taken as the stream).
    await waitFor(async () => (await execa('ss', ['-Hltn', `sport = :${port}`])).stdout.trim() !== '', 20_000, 'the target listening');
    const source = await qmpSession(src);
    try {
      await source.execute('migrate-set-parameters', { 'max-bandwidth': 1 << 30, 'downtime-limit': 300 });
      await source.execute('migrate', { uri: `tcp:127.0.0.1:${port}` });
      let info: Record<string, unknown> = {};
      const deadline = Date.now() + 30_000;
      while (info.status !== 'completed' && Date.now() < deadline) {
        info = await source.execute('query-migrate');
        expect(info.status).not.toBe('failed');
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(info).toMatchObject({ status: 'completed', 'total-time': expect.any(Number), downtime: expect.any(Number) });
      expect((await source.execute('query-status')).status).toBe('postmigrate');
    } finally {
      source.close();
    }
    const target = await qmpSession(dst);
    expect((await target.execute('query-status')).status).toBe('running');
    target.close();
  }, 60_000);

  it('rejects a QMP error with its description', async () => {
    const target = await qmpSession(`${dir}/src.sock`);
    await expect(target.execute('no-such-command')).rejects.toThrow(/QMP: The command no-such-command has not been found/);
    target.close();
  });
});
