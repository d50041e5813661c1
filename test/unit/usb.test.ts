import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confirmDevice, describeBlockDevice, holders } from '../../src/baremetal/usb.js';

/**
 * Real block devices (loop devices with a partition): a disk is refused while anything uses it
 * or one of its partitions (mounted, swap, a device-mapper holder), and a partition is refused
 * outright. Needs root, as CI and setup run.
 */
let dev = '';
let part = '';
const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-usb-'));

/** An MBR with one Linux partition from sector 2048 to the end. */
function writeMbr(file: string, sectors: number): void {
  const mbr = Buffer.alloc(512);
  const e = 446;
  mbr[e + 4] = 0x83;
  mbr.writeUInt32LE(2048, e + 8);
  mbr.writeUInt32LE(sectors - 2048, e + 12);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  const fd = openSync(file, 'r+');
  writeSync(fd, mbr, 0, 512, 0);
  closeSync(fd);
}

const reasons = async () => (await describeBlockDevice(dev)).inUse;

describe('hardware-smoke usb: whole, unused disks only (real loop devices)', () => {
  beforeAll(async () => {
    const img = path.join(dir, 'stick.img');
    await execa('truncate', ['-s', '64M', img]);
    writeMbr(img, (64 * 2 ** 20) / 512);
    dev = (await execa('losetup', ['--find', '--show', '--partscan', img])).stdout.trim();
    part = `${dev}p1`;
    // Some kernels read no partition table on their own (no MSDOS support built in): add it by BLKPG.
    if (!existsSync(part)) await execa('partx', ['--add', dev]);
  });
  afterAll(async () => {
    if (!dev) return;
    await execa('partx', ['--delete', dev], { reject: false });
    await execa('losetup', ['--detach', dev], { reject: false });
  });

  it('is free when nothing uses it, and refuses a partition', async () => {
    expect(await reasons()).toEqual([]);
    await expect(describeBlockDevice(part)).rejects.toThrow(`${part} is a partition; give the whole disk`);
  });

  it('refuses a disk whose partition is mounted, naming where', async () => {
    await execa('mkfs.ext4', ['-q', part]);
    const mnt = path.join(dir, 'mnt');
    mkdirSync(mnt);
    await execa('mount', [part, mnt]);
    try {
      expect(await reasons()).toEqual([`${path.basename(part)} is mounted at ${mnt}`]);
      await expect(confirmDevice(dev, true)).rejects.toThrow(new RegExp(`${dev} is in use: .*mounted at ${mnt}; nothing was written`));
    } finally {
      await execa('umount', [mnt]);
    }
  });

  it('refuses a disk whose partition is swap', async () => {
    await execa('mkswap', ['-q', part]);
    await execa('swapon', [part]);
    try {
      expect(await reasons()).toEqual([`${path.basename(part)} is in use as swap`]);
    } finally {
      await execa('swapoff', [part]);
    }
  });

  // This kernel has no device-mapper or md to build a real holder with: the sysfs reading is checked on a copy of its layout.
  it('names device-mapper and md holders of the disk and of each partition', async () => {
    const sys = path.join(dir, 'sys-block-sdz');
    for (const d of ['holders/md127', 'sdz1/holders/dm-3', 'sdz2/holders']) mkdirSync(path.join(sys, d), { recursive: true });
    expect(await holders(sys, 'sdz', ['sdz1', 'sdz2'])).toEqual([
      'sdz is held by md127 (LVM, dm-crypt or md)',
      'sdz1 is held by dm-3 (LVM, dm-crypt or md)',
    ]);
    expect(await holders(path.join('/sys/class/block', path.basename(dev)), path.basename(dev), [path.basename(part)])).toEqual([]);
  });
});
