import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import type { Logger } from 'pino';
import { z } from 'zod';
import { loadInstallContract } from '../config/install-contract.js';
import { writeFileAtomic } from '../core/atomic.js';
import { UsageError } from '../core/errors.js';
import { seconds } from '../core/time.js';
import { requireTools, which } from '../host/tools.js';
import { hashTree } from '../images/content-hash.js';
import { initramfsTree, kernelModules, moduleLoadOrder, packInitramfs, requireStaticBusybox } from '../images/initramfs.js';
import { pruneBuilds } from '../images/prune.js';

/** Bump when the steps below change in a way the input hash cannot see. */
const BUILDER_VERSION = 1;

/** Drivers the installer and the installed system need (the cloud kernel has them as modules); their dependencies come along. */
export const GUEST_MODULES = ['virtio_pci', 'virtio_blk', 'virtio_net', 'virtio_console', 'qemu_fw_cfg'];

/** Where scripts/setup-host.sh unpacks Debian's cloud kernel (vmlinuz + modules/<version>/). */
export const KERNEL_DIR = process.env.ULTRACLOUD_KERNEL_DIR ?? '/var/cache/ultracloud/kernel';

export const InstallerManifest = z.object({
  id: z.string(),
  builtAt: z.string(),
  kernelVersion: z.string(),
  cmdline: z.string(),
  iso: z.string(),
  bundles: z.record(z.string(), z.string()),
  systems: z.record(z.string(), z.string()),
});
export type InstallerManifest = z.infer<typeof InstallerManifest>;

async function kernelInputs(): Promise<{ vmlinuz: string; version: string; modules: Record<string, string>; load: string[] }> {
  const vmlinuz = path.join(KERNEL_DIR, 'vmlinuz');
  const versions = await fs.readdir(path.join(KERNEL_DIR, 'modules')).catch(() => [] as string[]);
  if (!existsSync(vmlinuz) || versions.length !== 1)
    throw new UsageError(
      `no kernel at ${KERNEL_DIR} (vmlinuz + modules/<version>/); run scripts/setup-host.sh as root, or set ULTRACLOUD_KERNEL_DIR`,
    );
  const version = versions[0]!;
  const modules = await kernelModules(path.join(KERNEL_DIR, 'modules', version, 'kernel'));
  return { vmlinuz, version, modules, load: await moduleLoadOrder(GUEST_MODULES, modules) };
}

/**
 * The lab's installer ISO and what the deployer serves, from Debian parts only: the cloud
 * kernel, a static busybox and the scripts in profiles/<p>/baremetal/guest. Cached by a hash
 * of all inputs under <images>/baremetal-<hash>/.
 */
export async function buildLabInstaller(
  profileDir: string,
  imagesDir: string,
  log: Logger,
  o: { /** extra kernel parameters baked into the ISO's menu (hardware: ultracloud.deployer=URL) */ cmdline?: string } = {},
): Promise<InstallerManifest> {
  const cmdline = o.cmdline ?? '';
  await requireTools('busybox', 'cpio', 'grub-mkrescue', 'xorriso');
  const k = await kernelInputs();
  const busybox = (await which('busybox'))!;
  await requireStaticBusybox(busybox);
  const guest = path.join(profileDir, 'baremetal', 'guest');
  const systemsDir = path.join(profileDir, 'baremetal', 'systems');
  const { contract } = loadInstallContract(profileDir);
  const profiles = [...new Set(Object.values(contract.classes).map((c) => c.install_plan.profile))].sort();

  const h = createHash('sha256');
  h.update(
    `builder ${BUILDER_VERSION} kernel ${k.version} ${(await fs.stat(k.vmlinuz)).size} profiles ${profiles.join(',')} cmdline ${cmdline}\n`,
  );
  h.update(await fs.readFile(busybox));
  await hashTree(h, guest);
  await hashTree(h, systemsDir);
  const id = `baremetal-${h.digest('hex').slice(0, 16)}`;
  const out = path.join(imagesDir, id);
  const manifestFile = path.join(out, 'manifest.json');
  if (existsSync(manifestFile)) {
    log.info(`installer ${id} reused`);
    return InstallerManifest.parse(JSON.parse(await fs.readFile(manifestFile, 'utf8')));
  }

  const t0 = Date.now();
  const tmp = path.join(out, '.build');
  await fs.rm(tmp, { recursive: true, force: true });
  await fs.mkdir(tmp, { recursive: true });
  try {
    const initramfs = async (name: string, init: string): Promise<string> => {
      const root = path.join(tmp, name);
      await initramfsTree(root, {
        busybox,
        init: path.join(guest, init),
        modules: k.modules,
        load: k.load,
        files: {
          'lib/ultracloud/lib.sh': await fs.readFile(path.join(guest, 'lib.sh')),
          'lib/ultracloud/udhcpc.sh': await fs.readFile(path.join(guest, 'udhcpc.sh')),
          'etc/ultracloud-installer-version': `${id}\n`,
        },
      });
      await execa('chmod', ['755', path.join(root, 'lib/ultracloud/udhcpc.sh')]);
      const file = path.join(tmp, `${name}.img`);
      await packInitramfs(root, file);
      return file;
    };
    const installerImg = await initramfs('installer', 'installer-init');
    const systemInitrd = await initramfs('system-initrd', 'system-initrd-init');

    // The installed system: busybox userland, the agent, the kernel and its initrd, per install profile.
    const bundles: Record<string, string> = {};
    const applets = (await execa(busybox, ['--list'])).stdout.split('\n').filter(Boolean);
    await fs.mkdir(path.join(out, 'bundles'), { recursive: true });
    for (const profile of profiles) {
      const root = path.join(tmp, `rootfs-${profile}`);
      for (const d of ['bin', 'sbin', 'usr/sbin', 'dev', 'proc', 'sys', 'tmp', 'boot', 'etc/ultracloud', 'lib/ultracloud', 'systems/base'])
        await fs.mkdir(path.join(root, d), { recursive: true });
      await fs.copyFile(busybox, path.join(root, 'bin/busybox'));
      for (const a of applets)
        if (a !== 'busybox' && !existsSync(path.join(root, 'bin', a))) await fs.symlink('busybox', path.join(root, 'bin', a));
      await fs.copyFile(path.join(guest, 'system-init'), path.join(root, 'sbin/init'));
      await fs.copyFile(path.join(guest, 'ultracloud-agent'), path.join(root, 'usr/sbin/ultracloud-agent'));
      for (const f of ['lib.sh', 'udhcpc.sh']) await fs.copyFile(path.join(guest, f), path.join(root, 'lib/ultracloud', f));
      await fs.copyFile(k.vmlinuz, path.join(root, 'boot/vmlinuz'));
      await fs.copyFile(systemInitrd, path.join(root, 'boot/initrd'));
      await fs.writeFile(path.join(root, 'etc/ultracloud/profile'), `${profile}\n`);
      await fs.writeFile(
        path.join(root, 'systems/base/activate'),
        '#!/bin/sh\n# The system the installer laid down: nothing beyond the agent.\n',
        { mode: 0o755 },
      );
      await execa('chmod', [
        '755',
        path.join(root, 'sbin/init'),
        path.join(root, 'usr/sbin/ultracloud-agent'),
        path.join(root, 'bin/busybox'),
        path.join(root, 'lib/ultracloud/udhcpc.sh'),
      ]);
      bundles[profile] = path.join(out, 'bundles', `${profile}.tar.gz`);
      await execa('tar', ['-czf', bundles[profile]!, '--owner=0', '--group=0', '-C', root, '.']);
    }

    const systems: Record<string, string> = {};
    await fs.mkdir(path.join(out, 'systems'), { recursive: true });
    for (const s of (await fs.readdir(systemsDir)).sort()) {
      systems[s] = path.join(out, 'systems', `${s}.tar.gz`);
      await execa('tar', ['-czf', systems[s]!, '--owner=0', '--group=0', '-C', path.join(systemsDir, s), '.']);
    }

    const iso = path.join(tmp, 'iso');
    await fs.mkdir(path.join(iso, 'boot/grub'), { recursive: true });
    await fs.writeFile(
      path.join(iso, 'boot/grub/grub.cfg'),
      (await fs.readFile(path.join(guest, 'grub.cfg'), 'utf8')).replaceAll('@CMDLINE@', cmdline),
    );
    await fs.copyFile(k.vmlinuz, path.join(iso, 'boot/vmlinuz'));
    await fs.copyFile(installerImg, path.join(iso, 'boot/installer.img'));
    const isoFile = path.join(out, 'installer.iso');
    const r = await execa('grub-mkrescue', ['-o', isoFile, iso], { reject: false });
    if (r.exitCode !== 0) throw new Error(`grub-mkrescue failed (needs grub-pc-bin, xorriso, mtools):\n${r.stderr}`);

    const manifest: InstallerManifest = {
      id,
      builtAt: new Date().toISOString(),
      kernelVersion: k.version,
      cmdline,
      iso: isoFile,
      bundles,
      systems,
    };
    await writeFileAtomic(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
    await pruneBuilds(imagesDir, id, new Set(), log);
    log.info(
      `installer ${id} built in ${seconds(Date.now() - t0)} (kernel ${k.version}, bundles ${profiles.join(', ')}, ${Object.keys(systems).length} desired systems)`,
    );
    return manifest;
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
