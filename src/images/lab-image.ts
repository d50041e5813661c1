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
import { StateLock } from '../core/lock.js';
import { pidAlive, spawnGroup } from '../core/proc.js';
import { onCleanup } from '../core/shutdown.js';
import { runStamp, seconds } from '../core/time.js';
import { mountsUnder, unmountUnder } from '../core/work-root.js';
import { probeBootSector } from '../host/accel-probe-sector.js';
import { requireTools } from '../host/tools.js';
import { hashTree } from './content-hash.js';
import { bundleHarnessModule } from './harness-module.js';
import { initramfsTree, kernelModules, moduleLoadOrder, packInitramfs, requireStaticBusybox } from './initramfs.js';
import type { BootArtifacts, BuiltImages } from './types.js';

/** Bump when the build steps below change in a way the recipe hash cannot see. */
const BUILDER_VERSION = 4;

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
  /** Image path -> harness module (an entry under dist/) bundled there: the cluster's deployer. */
  harnessModules: z
    .record(z.string().regex(/^(?!.*\.\.)[a-z0-9][\w./-]*\.mjs$/, 'a path inside the image, relative, ending in .mjs'), z.string().min(1))
    .default({}),
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

/** Content hash of everything that goes into the image: recipe, overlay files (path, mode, bytes), bundled harness modules, builder version. */
export async function recipeHash(recipeDir: string): Promise<string> {
  const h = createHash('sha256');
  h.update(`builder ${BUILDER_VERSION}\n`);
  const recipe = await loadRecipe(recipeDir);
  h.update(JSON.stringify(recipe));
  await hashTree(h, path.join(recipeDir, 'overlay'));
  for (const [to, entry] of Object.entries(recipe.harnessModules)) h.update(`${to}\n${await bundleHarnessModule(entry)}`);
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

/** The newest complete build of this recipe hash: `<hash>`, or `<hash>.<stamp>` for a forced rebuild. */
async function newestBuild(imagesDir: string, hash: string): Promise<{ id: string; dir: string; manifest: ImageManifest } | null> {
  const names = (await fs.readdir(imagesDir).catch(() => [] as string[])).filter((n) => n === hash || n.startsWith(`${hash}.`));
  const builds: { id: string; dir: string; manifest: ImageManifest }[] = [];
  for (const id of names) {
    const dir = path.join(imagesDir, id);
    try {
      builds.push({ id, dir, manifest: ImageManifest.parse(JSON.parse(await fs.readFile(path.join(dir, 'manifest.json'), 'utf8'))) });
    } catch {
      /* not a complete build */
    }
  }
  return builds.sort((a, b) => b.manifest.builtAt.localeCompare(a.manifest.builtAt))[0] ?? null;
}

/** Partial builds (`.build-<hash>-<pid>`) of harnesses that are gone: unmount what their builder left, then remove. */
async function sweepPartialBuilds(imagesDir: string, log: Logger): Promise<void> {
  for (const n of await fs.readdir(imagesDir).catch(() => [] as string[])) {
    const m = /^\.build-[0-9a-f]+-(\d+)$/.exec(n);
    if (!m || (Number(m[1]) !== process.pid && pidAlive(Number(m[1])))) continue;
    log.info(`removing a partial image build an interrupted run left: ${n}`);
    await removePartial(path.join(imagesDir, n), log);
  }
}

/** Unmount (proc, sys, devpts, shm an interrupted mmdebstrap leaves), then remove; never rm through a mount. */
async function removePartial(dir: string, log: Logger): Promise<void> {
  const unmounted = await unmountUnder(dir);
  if (unmounted.length) log.info(`unmounted ${unmounted.join(', ')}`);
  const still = mountsUnder(await fs.realpath(dir).catch(() => dir));
  if (still.length) {
    log.warn(`not removing ${dir}: still mounted under it: ${still.join(', ')}`);
    return;
  }
  await fs.rm(dir, { recursive: true, force: true });
}

/** Run a long tool, logging its lines at debug and a heartbeat with the last line every 15 s. */
async function runWithProgress(log: Logger, label: string, cmd: string, args: string[]): Promise<void> {
  const t0 = Date.now();
  let last = '';
  const beat = setInterval(() => log.info(`${label}: ${seconds(Date.now() - t0)} elapsed${last ? `; ${last.slice(0, 120)}` : ''}`), 15000);
  try {
    const child = spawnGroup(cmd, args);
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
  const nodesFor = (a: BootArtifacts) => Object.fromEntries(profile.nodes.map((n) => [n.name, a]));
  const reuse = (b: { id: string; dir: string; manifest: ImageManifest }): BuiltImages => {
    log.info(`image ${b.id}: reusing cached build from ${b.manifest.builtAt} (${b.dir})`);
    return { id: b.id, reused: true, nodes: nodesFor(artifactsFrom(b.dir, b.manifest)) };
  };

  const cached = opts.force ? null : await newestBuild(imagesDir, hash);
  if (cached) return reuse(cached);
  await requireTools('mmdebstrap', 'mkfs.ext4', 'qemu-img');
  if (process.getuid?.() !== 0)
    throw new UsageError('building the lab image needs root (mmdebstrap and mkfs.ext4 -d must preserve file ownership)');

  // One builder per image cache at a time; a second one waits, then finds what the first built.
  const lock = await StateLock.acquire(imagesDir, 'build', {
    waitMs: 30 * 60_000,
    onWait: (h) => log.info(`waiting for another image build (${h})`),
  });
  try {
    const meanwhile = opts.force ? null : await newestBuild(imagesDir, hash);
    if (meanwhile) return reuse(meanwhile);
    await sweepPartialBuilds(imagesDir, log);
    return await buildInto(imagesDir, hash, recipeDir, recipe, log, nodesFor);
  } finally {
    await lock.release();
  }
}

/**
 * mmdebstrap rootfs + overlay -> ext4 -> read-only qcow2, in `.build-<hash>-<pid>`, renamed into
 * place only when complete. A build never replaces a directory: a forced rebuild of a hash that
 * exists gets `<hash>.<stamp>`, so a node disk's base never changes under it. On any exit path
 * (also SIGTERM) the builder's process group is stopped, its mounts undone, the partial dir removed.
 */
async function buildInto(
  imagesDir: string,
  hash: string,
  recipeDir: string,
  recipe: LabRecipe,
  log: Logger,
  nodesFor: (a: BootArtifacts) => Record<string, BootArtifacts>,
): Promise<BuiltImages> {
  const t0 = Date.now();
  const tmp = path.join(imagesDir, `.build-${hash}-${process.pid}`);
  await fs.mkdir(tmp);
  const dropPartial = onCleanup('remove the partial image build', () => removePartial(tmp, log));
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
    await removePartial(rootfs, log);
    await fs.chmod(path.join(tmp, 'base.qcow2'), 0o444);
    const manifest: ImageManifest = {
      hash,
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round((Date.now() - t0) / 1000),
      recipe,
      files: { baseDisk: 'base.qcow2', kernel: 'vmlinuz', initrd: 'initrd.img' },
    };
    await writeFileAtomic(path.join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2));
    const id = existsSync(path.join(imagesDir, hash)) ? `${hash}.${runStamp()}` : hash;
    const outDir = path.join(imagesDir, id);
    await fs.rename(tmp, outDir); // fails rather than replace: outDir never exists here
    log.info(`image ${id}: built in ${seconds(Date.now() - t0)} -> ${outDir}`);
    return { id, reused: false, nodes: nodesFor(artifactsFrom(outDir, manifest)) };
  } catch (err) {
    await removePartial(tmp, log);
    throw err;
  } finally {
    dropPartial();
  }
}

async function customizeRootfs(rootfs: string, recipeDir: string, recipe: LabRecipe): Promise<void> {
  const overlay = path.join(recipeDir, 'overlay');
  if (existsSync(overlay)) await fs.cp(overlay, rootfs, { recursive: true, force: true, verbatimSymlinks: true });
  for (const [to, entry] of Object.entries(recipe.harnessModules))
    await fs.writeFile(path.join(rootfs, to), await bundleHarnessModule(entry));
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
  await buildInnerGuest(rootfs);
}

/** What the VMs a worker hosts boot: the image's own kernel, and an initramfs from its static busybox and modules. */
export const INNER_GUEST_DIR = 'usr/local/lib/ultracloud/inner-guest';
const INNER_GUEST_MODULES = ['virtio_pci', 'virtio_net', 'virtio_blk'];

/** When the overlay carries the inner guest's init, build its kernel + initrd into the image (nothing to build at boot). */
async function buildInnerGuest(rootfs: string): Promise<void> {
  const dir = path.join(rootfs, INNER_GUEST_DIR);
  if (!existsSync(path.join(dir, 'init'))) return;
  const busybox = path.join(rootfs, 'bin/busybox');
  if (!existsSync(busybox)) throw new UsageError(`the inner guest needs a static busybox in the image: add busybox-static to the recipe`);
  await requireStaticBusybox(busybox);
  const kernel = (await fs.readdir(path.join(rootfs, 'boot'))).find((f) => f.startsWith('vmlinuz-'));
  if (!kernel) throw new Error('no kernel in the rootfs for the inner guest');
  const version = kernel.slice('vmlinuz-'.length);
  const modules = await kernelModules(path.join(rootfs, 'lib/modules', version, 'kernel'));
  const tree = path.join(rootfs, 'tmp/inner-guest-initramfs');
  await initramfsTree(tree, {
    busybox,
    init: path.join(dir, 'init'),
    modules,
    load: await moduleLoadOrder(INNER_GUEST_MODULES, modules),
    files: { 'etc/udhcpc.sh': await fs.readFile(path.join(dir, 'udhcpc.sh')), 'bin/webapp': await fs.readFile(path.join(dir, 'webapp')) },
  });
  await execa('chmod', ['755', path.join(tree, 'etc/udhcpc.sh'), path.join(tree, 'bin/webapp')]);
  await packInitramfs(tree, path.join(dir, 'initrd.img'));
  await fs.rm(tree, { recursive: true, force: true });
  await fs.copyFile(path.join(rootfs, 'boot', kernel), path.join(dir, 'vmlinuz'));
  // The boot sector the host's accelerator probe runs: a worker's agent asks the same question of its own KVM.
  await fs.writeFile(path.join(dir, 'accel-probe.img'), probeBootSector());
}
