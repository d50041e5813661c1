import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { INSTALL_SEQUENCE, MARKER_PREFIX } from '../../src/baremetal/markers.js';
import { cli } from '../helpers/cli.js';

describe('a full disk', () => {
  it('is exit 1 naming the path, with no stack trace and no half-written run dir', async () => {
    const w = mkdtempSync(path.join(os.tmpdir(), 'uc-full-'));
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'uc-full', w]);
    try {
      writeFileSync(path.join(w, '.ultracloud-work-root'), '');
      const log = path.join(mkdtempSync(path.join(os.tmpdir(), 'uc-log-')), 'sol.log');
      const markers = INSTALL_SEQUENCE.map((m) => `${MARKER_PREFIX} ${m}\n`).join('');
      writeFileSync(log, `${markers}${'x'.repeat(2 * 2 ** 20)}\n`); // its evidence copy does not fit
      const r = await cli(['--work-root', w, 'hardware-smoke', 'capture', '--log', log]);
      expect(r.exitCode, r.stderr).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`no space left on the device holding ${w}/hardware-smoke/\\d{8}T\\d{6}Z`));
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(readdirSync(path.join(w, 'hardware-smoke')).filter((d) => /^\d{8}T/.test(d))).toEqual([]);
    } finally {
      await execa('umount', [w]);
    }
  });
});
