import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline/promises';
import type { Logger } from 'pino';
import { CheckFailed, UsageError } from '../core/errors.js';

/** What the operator is about to overwrite, from sysfs: size and model, and whether anything on it is mounted. */
export async function describeBlockDevice(device: string): Promise<{ device: string; bytes: number; model: string; mounted: string[] }> {
  const st = await fs.stat(device).catch(() => null);
  if (!st) throw new UsageError(`${device} does not exist`);
  if (!st.isBlockDevice()) throw new UsageError(`${device} is not a block device (expected a whole USB disk such as /dev/sdX)`);
  const real = await fs.realpath(device);
  const name = path.basename(real);
  const sys = `/sys/class/block/${name}`;
  const bytes = Number((await fs.readFile(`${sys}/size`, 'utf8').catch(() => '0')).trim()) * 512;
  const model = (await fs.readFile(`${sys}/device/model`, 'utf8').catch(() => '')).trim() || 'unknown model';
  const mounts = (await fs.readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[0] ?? '');
  const mounted = mounts.filter((m) => m === real || (m.startsWith(real) && /\d$/.test(m.slice(real.length))) || m.startsWith(`${real}p`));
  return { device: real, bytes, model, mounted };
}

/**
 * Before anything is built or written: the device must be a whole, unmounted block device, and
 * the operator types its name (or passed --yes; without a terminal, --yes is required).
 */
export async function confirmDevice(device: string, yes: boolean): Promise<string> {
  const d = await describeBlockDevice(device);
  if (d.mounted.length) throw new UsageError(`${d.device} is in use (mounted: ${d.mounted.join(', ')}); unmount it first`);
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
