import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline/promises';
import type { Logger } from 'pino';
import { CheckFailed, UsageError } from '../core/errors.js';

export interface BlockDevice {
  device: string;
  bytes: number;
  model: string;
  /** Everything that uses the disk or one of its partitions, as a sentence each; empty when free. */
  inUse: string[];
}

const devNumber = (rdev: number) => `${Math.floor(rdev / 256) & 0xfff}:${(rdev & 0xff) | ((rdev >> 12) & 0xfff00)}`;

/**
 * What the operator is about to overwrite, from sysfs and procfs: size, model, and everything
 * that uses it or any of its partitions. Mounts and swaps are matched by device number, so
 * `/dev/root`, a by-id link or a renamed node all count; holders catch LVM, dm-crypt and md.
 */
export async function describeBlockDevice(device: string): Promise<BlockDevice> {
  const st = await fs.stat(device).catch(() => null);
  if (!st) throw new UsageError(`${device} does not exist`);
  if (!st.isBlockDevice()) throw new UsageError(`${device} is not a block device (expected a whole USB disk such as /dev/sdX)`);
  const real = await fs.realpath(device);
  const name = path.basename(real);
  const sys = `/sys/class/block/${name}`;
  if (await fs.stat(`${sys}/partition`).catch(() => null))
    throw new UsageError(`${real} is a partition; give the whole disk (the installer image carries its own partition table)`);
  const bytes = Number((await fs.readFile(`${sys}/size`, 'utf8').catch(() => '0')).trim()) * 512;
  const model = (await fs.readFile(`${sys}/device/model`, 'utf8').catch(() => '')).trim() || 'unknown model';
  // The disk and its partitions, by kernel name and device number.
  const parts = (await fs.readdir(sys).catch(() => [] as string[])).filter((e) => e.startsWith(name));
  const members = new Map<string, string>([[devNumber(st.rdev), name]]);
  for (const p of parts) {
    const dev = (await fs.readFile(`${sys}/${p}/dev`, 'utf8').catch(() => '')).trim();
    if (dev) members.set(dev, p);
  }
  const inUse: string[] = [];
  for (const line of (await fs.readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const f = line.split(' ');
    const who = f[2] && members.get(f[2]);
    if (who) inUse.push(`${who} is mounted at ${f[4]}`);
  }
  for (const line of (await fs.readFile('/proc/swaps', 'utf8').catch(() => '')).split('\n').slice(1)) {
    const file = line.split(/\s+/)[0];
    if (!file) continue;
    const sw = await fs.stat(file).catch(() => null);
    const who = sw?.isBlockDevice() && members.get(devNumber(sw.rdev));
    if (who) inUse.push(`${who} is in use as swap`);
  }
  inUse.push(...(await holders(sys, name, parts)));
  return { device: real, bytes, model, inUse };
}

/** Device-mapper (LVM, dm-crypt) and md devices built on the disk or a partition: sysfs `holders/` of each. */
export async function holders(sysDir: string, disk: string, parts: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const who of [disk, ...parts]) {
    const dir = who === disk ? path.join(sysDir, 'holders') : path.join(sysDir, who, 'holders');
    for (const h of await fs.readdir(dir).catch(() => [] as string[])) out.push(`${who} is held by ${h} (LVM, dm-crypt or md)`);
  }
  return out;
}

/**
 * Before anything is built or written: the device must be a whole, unmounted block device, and
 * the operator types its name (or passed --yes; without a terminal, --yes is required).
 */
export async function confirmDevice(device: string, yes: boolean): Promise<string> {
  const d = await describeBlockDevice(device);
  if (d.inUse.length) throw new UsageError(`${d.device} is in use: ${d.inUse.join('; ')}; nothing was written`);
  if (yes) return d.device;
  const what = `${d.device} (${d.model}, ${(d.bytes / 2 ** 30).toFixed(1)} GiB)`;
  if (!process.stdin.isTTY) throw new UsageError(`writing ${what} destroys its contents: pass --yes to confirm (no terminal to ask on)`);
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(`This ERASES ${what}. Type ${d.device} to continue: `);
  rl.close();
  if (answer.trim() !== d.device) throw new UsageError('not confirmed; nothing was written');
  return d.device;
}

/** Write the installer image to a confirmed whole block device, with progress, then fsync it. */
export async function writeImageToDevice(image: string, device: string, o: { log: Logger }): Promise<{ bytes: number; device: string }> {
  const d = await describeBlockDevice(device);
  const size = (await fs.stat(image)).size;
  if (d.bytes < size) throw new CheckFailed(`${d.device} holds ${d.bytes} bytes; the image needs ${size}`);
  o.log.info(`writing ${path.basename(image)} (${(size / 2 ** 20).toFixed(0)} MiB) to ${d.device} (${d.model})`);
  let written = 0;
  let nextReport = 0.1;
  const src = createReadStream(image, { highWaterMark: 4 << 20 });
  src.on('data', (c) => {
    written += c.length;
    if (written / size >= nextReport) {
      o.log.info(`  ${Math.round((written / size) * 100)}%`);
      nextReport += 0.1;
    }
  });
  const dst = createWriteStream(d.device, { flags: 'r+' });
  await new Promise<void>((resolve, reject) => {
    src.on('error', reject);
    dst.on('error', reject);
    dst.on('close', () => resolve());
    src.pipe(dst);
  });
  const fh = await fs.open(d.device, 'r+');
  await fh.sync();
  await fh.close();
  return { bytes: written, device: d.device };
}
