import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { UsageError } from '../core/errors.js';

/**
 * busybox initramfs images for kernel-only guests (the lab installer, the VMs workers host): the
 * kernel's own modules loaded in dependency order, a static busybox, an /init script.
 */

/** An ELF64 with a PT_INTERP program header needs a dynamic loader (and a libc) at run time. */
export function hasInterpreter(elf: Buffer): boolean {
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) throw new Error('not an ELF64 file');
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const size = elf.readUInt16LE(0x36);
  const count = elf.readUInt16LE(0x38);
  for (let i = 0; i < count; i++) if (elf.readUInt32LE(phoff + i * size) === 3) return true;
  return false;
}

/** Refuse a busybox an initramfs could not start (no libc there). */
export async function requireStaticBusybox(busybox: string): Promise<void> {
  if (hasInterpreter(await fs.readFile(busybox)))
    throw new UsageError(`${busybox} is dynamically linked; an initramfs needs a static one (apt-get install busybox-static)`);
}

/** module name (dashes as underscores) -> .ko file, for every module under a kernel's module dir. */
export async function kernelModules(moduleDir: string): Promise<Record<string, string>> {
  const { stdout } = await execa('find', [moduleDir, '-name', '*.ko']);
  const out: Record<string, string> = {};
  for (const f of stdout.split('\n').filter(Boolean)) out[path.basename(f, '.ko').replaceAll('-', '_')] = f;
  return out;
}

/** The modules to load, dependencies first, from each module's own `depends=` modinfo (no depmod needed). */
export async function moduleLoadOrder(wanted: string[], modules: Record<string, string>): Promise<string[]> {
  const order: string[] = [];
  const visit = async (m: string, chain: string[]): Promise<void> => {
    if (order.includes(m)) return;
    if (chain.includes(m)) throw new Error(`module dependency cycle: ${[...chain, m].join(' -> ')}`);
    const file = modules[m];
    if (!file) throw new UsageError(`kernel module ${m} not found (needed by ${chain.at(-1) ?? 'the guest'})`);
    const deps = /depends=([^\0]*)\0/.exec((await fs.readFile(file)).toString('latin1'))?.[1] ?? '';
    for (const d of deps.split(',').filter(Boolean)) await visit(d, [...chain, m]);
    order.push(m);
  };
  for (const m of wanted) await visit(m, []);
  return order;
}

/**
 * Lay out an initramfs tree: busybox at /bin/busybox, `init` at /init, the modules in load order
 * under /lib/modules (with a `load-order` file for the init script), extra files by their path.
 */
export async function initramfsTree(
  root: string,
  o: { busybox: string; init: string; modules: Record<string, string>; load: string[]; files?: Record<string, string | Buffer> },
): Promise<void> {
  for (const d of ['bin', 'dev', 'proc', 'sys', 'etc', 'tmp', 'lib/modules']) await fs.mkdir(path.join(root, d), { recursive: true });
  await fs.copyFile(o.busybox, path.join(root, 'bin/busybox'));
  await fs.copyFile(o.init, path.join(root, 'init'));
  for (const m of o.load) await fs.copyFile(o.modules[m]!, path.join(root, 'lib/modules', `${m}.ko`));
  await fs.writeFile(path.join(root, 'lib/modules/load-order'), `${o.load.join('\n')}\n`);
  for (const [rel, content] of Object.entries(o.files ?? {})) {
    await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await fs.writeFile(path.join(root, rel), content);
  }
  await execa('chmod', ['-R', 'u+w,a+rX', root]);
  await execa('chmod', ['755', path.join(root, 'init'), path.join(root, 'bin/busybox')]);
}

/** newc cpio, owned by root, gzip -1: what the kernel unpacks as its initramfs. */
export async function packInitramfs(root: string, file: string): Promise<void> {
  await execa('sh', ['-c', 'cd "$1" && find . | cpio -o -H newc --quiet -R 0:0 | gzip -1 > "$2"', 'sh', root, file]);
}

/**
 * A newc cpio archive of regular files, owned by root, written without a host tool: appended to
 * an initramfs, its files replace the earlier ones of the same name (the kernel unpacks in order).
 */
export function newcArchive(files: { name: string; mode: number; data: Buffer }[]): Buffer {
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const parts: Buffer[] = [];
  const entry = (name: string, mode: number, data: Buffer, ino: number) => {
    const fields = [ino, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, name.length + 1, 0];
    const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}${name}\0`, 'latin1');
    parts.push(header, pad(header.length), data, pad(data.length));
  };
  for (const [i, f] of files.entries()) entry(f.name, 0o100000 | f.mode, f.data, i + 1);
  entry('TRAILER!!!', 0, Buffer.alloc(0), 0);
  return Buffer.concat(parts);
}
