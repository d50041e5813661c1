import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { INSTALL_SEQUENCE, MarkerTracker, parseMarkerLine } from '../../src/baremetal/markers.js';

const tmpFile = () => path.join(mkdtempSync(path.join(os.tmpdir(), 'uc-markers-')), 'markers.log');

describe('install markers', () => {
  it('parses marker lines anywhere in console noise', () => {
    expect(parseMarkerLine('[  3.1] foo ULTRACLOUD_MARKER disk-selected disk=/dev/disk/by-id/x dev=/dev/vda')).toEqual({
      name: 'disk-selected',
      detail: 'disk=/dev/disk/by-id/x dev=/dev/vda',
    });
    expect(parseMarkerLine('nothing here')).toBeNull();
  });

  it('follows a growing file and resolves markers in order', async () => {
    const f = tmpFile();
    writeFileSync(f, 'boot noise\nULTRACLOUD_MARKER pre-install-boot installer=x\n');
    const t = new MarkerTracker('m1', f, { deadline: Date.now() + 10_000, alive: async () => true });
    await t.waitFor('pre-install-boot');
    setTimeout(() => appendFileSync(f, 'ULTRACLOUD_MARKER phone-home-ok machine=m1\nULTRACLOUD_MARKER plan-'), 100);
    setTimeout(() => appendFileSync(f, 'received node=n1\n'), 200);
    expect((await t.waitFor('plan-received')).detail).toBe('node=n1');
    await t.stop();
  });

  it('fails at once on a failure marker, naming the stage and the last marker', async () => {
    const f = tmpFile();
    writeFileSync(
      f,
      ['pre-install-boot', 'phone-home-ok', 'plan-received'].map((m) => `ULTRACLOUD_MARKER ${m}`).join('\n') +
        '\nULTRACLOUD_MARKER FAIL disk-selected /dev/disk/by-id/virtio-nope does not exist\n',
    );
    const t = new MarkerTracker('m1', f, { deadline: Date.now() + 10_000, alive: async () => true });
    await expect(t.waitFor('install-done')).rejects.toThrow(
      'm1: failure marker at disk-selected: disk-selected /dev/disk/by-id/virtio-nope does not exist; last marker: FAIL disk-selected',
    );
    await t.stop();
  });

  it('fails on an out-of-order marker, a rollback, and a machine that exits', async () => {
    const a = tmpFile();
    writeFileSync(a, 'ULTRACLOUD_MARKER pre-install-boot\nULTRACLOUD_MARKER plan-received\n');
    await expect(
      new MarkerTracker('a', a, { deadline: Date.now() + 5000, alive: async () => true }).waitFor('install-done'),
    ).rejects.toThrow('marker plan-received out of order (expected phone-home-ok)');
    const b = tmpFile();
    writeFileSync(
      b,
      `${INSTALL_SEQUENCE.slice(0, 6)
        .map((m) => `ULTRACLOUD_MARKER ${m}`)
        .join('\n')}\nULTRACLOUD_MARKER desired-system-rolled-back system=broken\n`,
    );
    await expect(
      new MarkerTracker('b', b, { deadline: Date.now() + 5000, alive: async () => true }).waitFor('desired-system-active'),
    ).rejects.toThrow('desired system was rolled back: system=broken');
    const c = tmpFile();
    writeFileSync(c, 'ULTRACLOUD_MARKER pre-install-boot');
    await expect(
      new MarkerTracker('c', c, { deadline: Date.now() + 5000, alive: async () => false }).waitFor('phone-home-ok'),
    ).rejects.toThrow('c: the machine (QEMU) exited; last marker: pre-install-boot');
  });
});
