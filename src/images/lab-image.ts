import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import type { Logger } from 'pino';
import { z } from 'zod';
import { formatZodIssues } from '../config/load-profile.js';
import type { LoadedProfile } from '../config/profile.js';
import { writeFileAtomic } from '../core/atomic.js';
import { UsageError } from '../core/errors.js';
import { seconds } from '../core/time.js';
import { requireTools } from '../host/tools.js';
import { hashTree } from './content-hash.js';
import type { BootArtifacts, BuiltImages } from './types.js';

/** Bump when the build steps below change in a way the recipe hash cannot see. */
const BUILDER_VERSION = 3;

export const LabRecipe = z.strictObject({
  suite: z.string(),
  variant: z.enum(['minbase', 'essential', 'apt', 'required', 'important', 'standard']),
  mirror: z.string().optional(),
  packages: z.array(z.string().min(1)).min(1),
  enableUnits: z.array(z.string()).default([]),
  disableUnits: z.array(z.string()).default([]),
  maskUnits: z.array(z.string()).default([]),
  kernelCmdline: z.string(),
  rootSizeGiB: z.number().int().min(1).max(64),
});
export type LabRecipe = z.infer<typeof LabRecipe>;

export const ImageManifest = z.object({
  hash: z.string(),
  builtAt: z.string(),
  buildSeconds: z.number(),
  recipe: LabRecipe,
  files: z.object({ baseDisk: z.string(), kernel: z.string(), initrd: z.string() }),
});
export type ImageManifest = z.infer<typeof ImageManifest>;

export async function loadRecipe(recipeDir: string): Promise<LabRecipe> {
  const file = path.join(recipeDir, 'recipe.json');
  const parsed = LabRecipe.safeParse(JSON.parse(await fs.readFile(file, 'utf8')));
  if (!parsed.success) throw new UsageError(`image recipe ${file} is invalid:\n${formatZodIssues(parsed.error)}`);
  return parsed.data;
}

/** Content hash of everything that goes into the image: recipe, overlay files (path, mode, bytes), builder version. */
export async function recipeHash(recipeDir: string): Promise<string> {
  const h = createHash('sha256');
  h.update(`builder ${BUILDER_VERSION}\n`);
  h.update(JSON.stringify(await loadRecipe(recipeDir)));
  await hashTree(h, path.join(recipeDir, 'overlay'));
  return h.digest('hex').slice(0, 16);
}

function artifactsFrom(dir: string, m: ImageManifest): BootArtifacts {
  return {
    baseDisk: path.join(dir, m.files.baseDisk),
    kernel: path.join(dir, m.files.kernel),
    initrd: path.join(dir, m.files.initrd),
    cmdline: m.recipe.kernelCmdline,
  };
}

/** A lab build by its id (content hash): what a restarted node must boot, even if the recipe changed since. */
export async function labImageById(profile: LoadedProfile, imagesDir: string, id: string): Promise<BuiltImages> {
  const dir = path.join(imagesDir, id);
  let manifest: ImageManifest;
  try {
    manifest = ImageManifest.parse(JSON.parse(await fs.readFile(path.join(dir, 'manifest.json'), 'utf8')));
  } catch {
    throw new UsageError(
      `image ${id} is no longer in ${imagesDir}; the node cannot be restarted on its disk (ultracloud clean, then start)`,
    );
  }
  const a = artifactsFrom(dir, manifest);
  return { id, reused: true, nodes: Object.fromEntries(profile.nodes.map((n) => [n.name, a])) };
}

/** The cached image for a profile, if built; used by `start` so it never builds implicitly by surprise. */
export async function cachedLabImage(profile: LoadedProfile, imagesDir: string): Promise<{ dir: string; manifest: ImageManifest } | null> {
  if (profile.image.source !== 'lab') return null;
  const hash = await recipeHash(path.resolve(profile.dir, profile.image.recipe));
  const dir = path.join(imagesDir, hash);
  try {
    return { dir, manifest: ImageManifest.parse(JSON.parse(await fs.readFile(path.join(dir, 'manifest.json'), 'utf8'))) };
  } catch {
    return null;
  }
}

/** Run a long tool, logging its lines at debug and a heartbeat with the last line every 15 s. */
async function runWithProgress(log: Logger, label: string, cmd: string, args: string[]): Promise<void> {
  const t0 = Date.now();
  let last = '';
  const beat = setInterval(() => log.info(`${label}: ${seconds(Date.now() - t0)} elapsed${last ? `; ${last.slice(0, 120)}` : ''}`), 15000);
  try {
    const child = execa(cmd, args, { all: true, reject: false, stdin: 'ignore' });
    const tail: string[] = [];
    child.all?.setEncoding('utf8');
    let buf = '';
    child.all?.on('data', (d: string) => {
      buf += d;
      const lines = buf.split(/\r?\n/);
      buf = lines.pop() ?? '';
      for (const l of lines) {
        if (!l.trim()) continue;
        last = l.trim();
        tail.push(last);
        if (tail.length > 30) tail.shift();
        log.debug({ tool: cmd }, l);
      }
    });
    const r = await child;
    if (r.exitCode !== 0) throw new Error(`${label} failed (${cmd} exited ${r.exitCode ?? r.signal}); last output:\n${tail.join('\n')}`);
    log.info(`${label}: done in ${seconds(Date.now() - t0)}`);
  } finally {
    clearInterval(beat);
  }
}

/**
 * Build (or reuse) the lab base image: mmdebstrap rootfs + overlay -> ext4 -> read-only qcow2,
 * cached under <images>/<content hash>/. Every node boots the same base through its own overlay.
 */
export async function buildLabImage(
  profile: LoadedProfile,
  imagesDir: string,
  log: Logger,
  opts: { force?: boolean } = {},
): Promise<BuiltImages> {
  if (profile.image.source !== 'lab') throw new Error('buildLabImage called for a non-lab profile');
  const recipeDir = path.resolve(profile.dir, profile.image.recipe);
  const recipe = await loadRecipe(recipeDir);
  const hash = await recipeHash(recipeDir);
  const outDir = path.join(imagesDir, hash);
  const nodesFor = (a: BootArtifacts) => Object.fromEntries(profile.nodes.map((n) => [n.name, a]));

  const cached = opts.force ? null : await cachedLabImage(profile, imagesDir);
  if (cached) {
    log.info(`image ${hash}: reusing cached build from ${cached.manifest.builtAt} (${outDir})`);
    return { id: hash, reused: true, nodes: nodesFor(artifactsFrom(outDir, cached.manifest)) };
  }
  await requireTools('mmdebstrap', 'mkfs.ext4', 'qemu-img');
  if (process.getuid?.() !== 0)
    throw new UsageError('building the lab image needs root (mmdebstrap and mkfs.ext4 -d must preserve file ownership)');

  const t0 = Date.now();
  await fs.mkdir(imagesDir, { recursive: true });
  const tmp = path.join(imagesDir, `.build-${hash}-${process.pid}`);
  await fs.rm(tmp, { recursive: true, force: true });
  await fs.mkdir(tmp);
  const rootfs = path.join(tmp, 'rootfs');
  try {
    log.info(`image ${hash}: mmdebstrap ${recipe.suite} (${recipe.variant}, ${recipe.packages.length} packages); this takes a few minutes`);
    await runWithProgress(log, 'mmdebstrap', 'mmdebstrap', [
      `--variant=${recipe.variant}`,
      `--include=${recipe.packages.join(',')}`,
      '--aptopt=Acquire::Retries "3"',
      // Services must not start inside the build chroot.
      '--customize-hook=rm -f "$1"/etc/ssh/ssh_host_*',
      recipe.suite,
      rootfs,
      ...(recipe.mirror ? [recipe.mirror] : []),
    ]);
    await customizeRootfs(rootfs, recipeDir, recipe);
    const boot = await fs.readdir(path.join(rootfs, 'boot'));
    const kernel = boot.find((f) => f.startsWith('vmlinuz-'));
    const initrd = boot.find((f) => f.startsWith('initrd.img-'));
    if (!kernel || !initrd)
      throw new Error(`no kernel/initrd in the rootfs /boot (found: ${boot.join(', ')}); is linux-image-* in the recipe?`);
    await fs.copyFile(path.join(rootfs, 'boot', kernel), path.join(tmp, 'vmlinuz'));
    await fs.copyFile(path.join(rootfs, 'boot', initrd), path.join(tmp, 'initrd.img'));
    const raw = path.join(tmp, 'base.raw');
    await runWithProgress(log, 'mkfs.ext4', 'mkfs.ext4', ['-q', '-F', '-L', 'root', '-d', rootfs, raw, `${recipe.rootSizeGiB}G`]);
    await runWithProgress(log, 'qemu-img convert', 'qemu-img', ['convert', '-O', 'qcow2', raw, path.join(tmp, 'base.qcow2')]);
    await fs.rm(raw);
    await fs.rm(rootfs, { recursive: true, force: true });
    await fs.chmod(path.join(tmp, 'base.qcow2'), 0o444);
    const manifest: ImageManifest = {
      hash,
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round((Date.now() - t0) / 1000),
      recipe,
      files: { baseDisk: 'base.qcow2', kernel: 'vmlinuz', initrd: 'initrd.img' },
    };
    await writeFileAtomic(path.join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2));
    await fs.rm(outDir, { recursive: true, force: true });
    await fs.rename(tmp, outDir);
    log.info(`image ${hash}: built in ${seconds(Date.now() - t0)} -> ${outDir}`);
    return { id: hash, reused: false, nodes: nodesFor(artifactsFrom(outDir, manifest)) };
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

async function customizeRootfs(rootfs: string, recipeDir: string, recipe: LabRecipe): Promise<void> {
  const overlay = path.join(recipeDir, 'overlay');
  if (existsSync(overlay)) await fs.cp(overlay, rootfs, { recursive: true, force: true, verbatimSymlinks: true });
  await fs.writeFile(path.join(rootfs, 'etc/hostname'), 'unconfigured\n');
  await fs.writeFile(path.join(rootfs, 'etc/fstab'), '/dev/vda / ext4 rw,noatime 0 1\n');
  const ctl = (verb: string, units: string[]) =>
    units.length ? execa('systemctl', [`--root=${rootfs}`, verb, ...units], { reject: false }) : undefined;
  for (const [verb, units] of [
    ['enable', recipe.enableUnits],
    ['disable', recipe.disableUnits],
    ['mask', recipe.maskUnits],
  ] as const) {
    const r = await ctl(verb, units);
    if (r && r.exitCode !== 0 && verb === 'enable') throw new Error(`systemctl --root enable ${units.join(' ')} failed: ${r.stderr}`);
  }
}
