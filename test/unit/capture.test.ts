import { createWriteStream, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { INSTALL_SEQUENCE, MARKER_PREFIX } from '../../src/baremetal/markers.js';
import { BIN, REPO } from '../helpers/cli.js';

/** hardware-smoke capture against hostile logs: huge files, FIFOs with no writer, signals. */
const work = () => mkdtempSync(path.join(os.tmpdir(), 'uc-capture-'));
const markers = INSTALL_SEQUENCE.map((m) => `${MARKER_PREFIX} ${m} node=hw-1\n`).join('');
const capture = (w: string, args: string[], timeout = 60_000) =>
  execa('node', [BIN, '--work-root', w, '--json', 'hardware-smoke', 'capture', ...args], {
    cwd: REPO,
    reject: false,
    timeout,
    stdin: 'ignore',
  });

describe('hardware-smoke capture', () => {
  it('keeps every marker and only the tail of a huge log', async () => {
    const w = work();
    const log = path.join(w, 'sol.log');
    const out = createWriteStream(log);
    const filler = `${'x'.repeat(1023)}\n`.repeat(1024); // 1 MiB
    out.write(`${markers.split('\n').slice(0, 3).join('\n')}\n`);
    for (let i = 0; i < 40; i++) out.write(filler);
    out.write(markers.split('\n').slice(3).join('\n'));
    await new Promise((r) => out.end(r));
    const r = await capture(w, ['--log', log]);
    expect(r.exitCode, r.stderr).toBe(0);
    const dir = JSON.parse(r.stdout).dir as string;
    expect(JSON.parse(readFileSync(path.join(dir, 'markers.json'), 'utf8')).map((m: { name: string }) => m.name)).toEqual([
      ...INSTALL_SEQUENCE,
    ]);
    const kept = statSync(path.join(dir, 'console.log')).size;
    expect(kept).toBeLessThan(10.1 * 2 ** 20);
    expect(readFileSync(path.join(dir, 'console.log'), 'utf8')).toMatch(/^\[ultracloud: the first \d+ bytes of .* are not kept/);
  }, 120_000);

  it('follows a FIFO: markers written into it pass; no writer at all ends at the deadline', async () => {
    const w = work();
    const fifo = path.join(w, 'sol.fifo');
    await execa('mkfifo', [fifo]);
    const t0 = Date.now();
    const none = await capture(w, ['--log', fifo, '--follow', '--timeout', '2']);
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toMatch(/no pre-install-boot within 2\.0 s/);
    expect(Date.now() - t0).toBeLessThan(15_000);

    const pending = capture(w, ['--log', fifo, '--follow', '--timeout', '60']);
    await new Promise((r) => setTimeout(r, 1500));
    writeFileSync(fifo, markers); // opens as a writer, writes, closes
    const ok = await pending;
    expect(ok.exitCode, ok.stderr).toBe(0);
  }, 60_000);

  it('exits on SIGTERM while following a FIFO nobody writes, recording the run as interrupted', async () => {
    const w = work();
    const fifo = path.join(w, 'sol.fifo');
    await execa('mkfifo', [fifo]);
    const child = capture(w, ['--log', fifo, '--follow', '--timeout', '600']);
    await new Promise((r) => setTimeout(r, 2000));
    const t0 = Date.now();
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode).toBe(143);
    expect(Date.now() - t0).toBeLessThan(5000);
    const latest = JSON.parse(readFileSync(path.join(w, 'hardware-smoke', 'latest', 'result.json'), 'utf8'));
    expect(latest).toMatchObject({ status: 'interrupted' });
  }, 30_000);
});
