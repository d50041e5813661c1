import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { PROBE_MARKER, probeAccel, probeBootSector } from '../../src/vm/accel-probe.js';
import { REPO } from '../helpers/cli.js';

describe('accelerator probe', () => {
  it('is one valid boot sector carrying both markers', () => {
    const s = probeBootSector();
    expect(s.length).toBe(512);
    expect([s[510], s[511]]).toEqual([0x55, 0xaa]);
    expect(s.toString('latin1')).toContain(PROBE_MARKER);
  });

  // setup-host.sh installs binutils: a missing assembler fails here rather than skipping the check.
  it('matches its assembly source', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-as-'));
    await execa('as', ['--64', '-o', `${dir}/p.o`, path.join(REPO, 'src/vm/accel-probe.S')]);
    await execa('objcopy', ['-O', 'binary', '-j', '.text', `${dir}/p.o`, `${dir}/p.bin`]);
    expect(readFileSync(`${dir}/p.bin`).equals(probeBootSector())).toBe(true);
  });

  it('boots under TCG and sees the marker (a real guest)', async () => {
    const r = await probeAccel('tcg', 20000);
    expect(r).toMatchObject({ usable: true });
  });
});

describe('accelerator verdict cache', () => {
  it("lives in the user's own cache dir, readable by the user only", async () => {
    const { accelCacheFile, accelVerdict } = await import('../../src/vm/accel-probe.js');
    expect(accelCacheFile({ XDG_CACHE_HOME: '/home/u/.cache' })).toBe('/home/u/.cache/ultracloud/accel.json');
    const cache = mkdtempSync(path.join(os.tmpdir(), 'uc-cache-'));
    const before = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = cache;
    try {
      const v = await accelVerdict({ refresh: true, kvmDeadlineMs: 1000 });
      expect(v.cached).toBe(false);
      const file = path.join(cache, 'ultracloud', 'accel.json');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
      expect((await accelVerdict()).cached).toBe(true);
    } finally {
      if (before === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = before;
    }
  }, 60_000);
});
