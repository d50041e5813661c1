import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { newcArchive } from '../../src/images/initramfs.js';

describe('newcArchive', () => {
  it('writes a newc cpio that cpio(1) reads back, names, modes and contents intact', async () => {
    const archive = newcArchive([
      { name: 'init', mode: 0o755, data: Buffer.from('#!/bin/sh\nexec sleep 1\n') },
      { name: 'etc/odd', mode: 0o644, data: Buffer.from('abc') },
    ]);
    expect(archive.length % 4).toBe(0);
    const list = await execa('cpio', ['-itv', '--quiet'], { input: archive });
    expect(list.stdout).toMatch(/^-rwxr-xr-x .* init$/m);
    expect(list.stdout).toMatch(/^-rw-r--r-- .* etc\/odd$/m);
    const body = await execa('cpio', ['-i', '--to-stdout', '--quiet', 'init'], { input: archive });
    expect(body.stdout).toBe('#!/bin/sh\nexec sleep 1');
  });
});
