import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { mountsUnder, removeWithin, WORK_ROOT_MARKER } from '../../src/core/work-root.js';
import { cli } from '../helpers/cli.js';

/** Every file under `dir` with its bytes: equal before and after means nothing was touched. */
function fingerprint(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      h.update(`${path.relative(dir, p)} ${statSync(p).mode}\n`);
      if (e.isDirectory()) walk(p);
      else h.update(readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex');
}

/** A decoy outside the work root that looks like state and like dated proofs. */
function decoy(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'uc-decoy-'));
  for (const sub of ['state/node01', 'vde-switch', 'chassis/bm-control-01', '20261101T000000Z', '20261102T000000Z']) {
    mkdirSync(path.join(d, sub), { recursive: true });
    writeFileSync(path.join(d, sub, 'precious'), `keep ${sub}`);
  }
  return d;
}

function workRoot(marked = true): string {
  const w = mkdtempSync(path.join(os.tmpdir(), 'uc-work-'));
  if (marked) writeFileSync(path.join(w, WORK_ROOT_MARKER), '');
  return w;
}

describe('nothing outside the work root is ever deleted', () => {
  it('a fresh work root (as in a fresh clone, where work/ is not in git) is marked by the first command, so clean works in it', async () => {
    const w = path.join(mkdtempSync(path.join(os.tmpdir(), 'uc-fresh-')), 'work');
    expect((await cli(['--work-root', w, 'stop'])).exitCode).toBe(0);
    expect(existsSync(path.join(w, WORK_ROOT_MARKER))).toBe(true);
    const r = await cli(['--work-root', w, 'clean']);
    expect(r.exitCode, r.stderr).toBe(0);
  });

  it('clean refuses (exit 2) a state dir that is a symlink out of the work root; the decoy is unchanged', async () => {
    const d = decoy();
    const before = fingerprint(d);
    const w = workRoot();
    symlinkSync(d, path.join(w, 'test-cluster'));
    const r = await cli(['--work-root', w, 'clean']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/refusing to delete .*test-cluster\/state: it is at .*uc-decoy-.*\/state, not inside the work root/);
    expect(fingerprint(d)).toBe(before);
  });

  it('prune-proof-logs 0 --apply never follows a lane symlink out; the decoy is unchanged', async () => {
    const d = decoy();
    const before = fingerprint(d);
    const w = workRoot();
    symlinkSync(d, path.join(w, 'smoke'));
    mkdirSync(path.join(w, 'matrix', '20261101T000000Z'), { recursive: true });
    symlinkSync(d, path.join(w, 'matrix', '20261102T000000Z'));
    const r = await cli(['--work-root', w, '--json', 'work-root-budget', 'prune-proof-logs', '0', '--apply']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).deleted.map((c: { lane: string; run: string }) => `${c.lane}/${c.run}`)).toEqual([
      'matrix/20261101T000000Z',
    ]);
    expect(fingerprint(d)).toBe(before);
  });

  it('PHOTON_VM_DIR pointing at the image cache is refused, not emptied', async () => {
    const w = workRoot();
    mkdirSync(path.join(w, 'images', 'abc'), { recursive: true });
    writeFileSync(path.join(w, 'images', 'abc', 'base.qcow2'), 'image');
    const r = await cli(['--work-root', w, 'clean'], { env: { PHOTON_VM_DIR: path.join(w, 'images') } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/refusing to clean .*images: it is or holds .*images, which the harness keeps/);
    expect(existsSync(path.join(w, 'images', 'abc', 'base.qcow2'))).toBe(true);
  });

  it('an empty work root setting is bad input, never the current directory', async () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'uc-cwd-'));
    mkdirSync(path.join(cwd, 'smoke', '20261101T000000Z'), { recursive: true });
    mkdirSync(path.join(cwd, 'test-cluster', 'state'), { recursive: true });
    for (const args of [['clean'], ['work-root-budget', 'prune-proof-logs', '0', '--apply']]) {
      const r = await execa('node', [path.resolve('bin/ultracloud.js'), ...args], {
        cwd,
        reject: false,
        env: { ...process.env, ULTRACLOUD_WORK_ROOT: '' },
      });
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr).toContain('ULTRACLOUD_WORK_ROOT is set but empty');
    }
    expect(existsSync(path.join(cwd, 'smoke', '20261101T000000Z'))).toBe(true);
    expect(existsSync(path.join(cwd, 'test-cluster', 'state'))).toBe(true);
  });

  it('a work root the harness did not create (no marker) is not deleted from, and the message says how to mark it', async () => {
    const w = workRoot(false);
    mkdirSync(path.join(w, 'test-cluster', 'state', 'node01'), { recursive: true });
    writeFileSync(path.join(w, 'notes.txt'), 'mine');
    const r = await cli(['--work-root', w, 'clean']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/has no \.ultracloud-work-root marker, so ultracloud did not create it/);
    expect(existsSync(path.join(w, 'test-cluster', 'state', 'node01'))).toBe(true);
  });

  it('removeWithin removes a symlink as a link and refuses a tree with something mounted under it', async () => {
    const d = decoy();
    const before = fingerprint(d);
    const w = workRoot();
    symlinkSync(d, path.join(w, 'link'));
    expect(await removeWithin(w, path.join(w, 'link'))).toBe('removed');
    expect(existsSync(path.join(w, 'link'))).toBe(false);
    expect(fingerprint(d)).toBe(before);
    const mnt = path.join(w, 'build', 'rootfs', 'proc');
    mkdirSync(mnt, { recursive: true });
    await execa('mount', ['-t', 'tmpfs', 'none', mnt]);
    try {
      await expect(removeWithin(w, path.join(w, 'build'))).rejects.toThrow(/something is mounted under it \(.*rootfs\/proc\)/);
      expect(existsSync(mnt)).toBe(true);
    } finally {
      await execa('umount', [mnt]);
    }
  });

  it('reads mount points from mountinfo, unescaping spaces', () => {
    const info = '36 35 98:0 / /mnt/a\\040b rw - ext4 /dev/x rw\n37 35 98:0 / /mnt/other rw - ext4 /dev/y rw\n';
    expect(mountsUnder('/mnt/a b', info)).toEqual(['/mnt/a b']);
    expect(mountsUnder('/mnt', info)).toEqual(['/mnt/a b', '/mnt/other']);
  });
});
