import { execa } from 'execa';
import { MissingTool } from '../core/errors.js';

/** Host tools the harness calls, and the Debian package that provides each. */
export const TOOLS = {
  'qemu-system-x86_64': { pkg: 'qemu-system-x86', why: 'boots the guests', need: 'always' },
  'qemu-img': { pkg: 'qemu-utils', why: 'qcow2 bases and overlays', need: 'always' },
  vde_switch: { pkg: 'vde2', why: 'the cluster L2 network', need: 'always' },
  'ssh-keygen': { pkg: 'openssh-client', why: 'the harness SSH key', need: 'always' },
  flock: { pkg: 'util-linux', why: 'the one-harness-per-state-dir lock', need: 'always' },
  ssh: { pkg: 'openssh-client', why: 'interactive `ultracloud ssh`', need: 'always' },
  mmdebstrap: { pkg: 'mmdebstrap', why: 'builds the lab image', need: 'lab' },
  'mkfs.ext4': { pkg: 'e2fsprogs', why: 'lab root filesystem', need: 'lab' },
  nix: { pkg: 'nix-bin', why: 'builds nix profiles (ultracloud)', need: 'nix' },
  'nix-instantiate': { pkg: 'nix-bin', why: 'guards: .nix syntax checks', need: 'nix' },
  busybox: { pkg: 'busybox-static', why: 'installer and fixture initramfs (bare-metal lanes, nix fixture)', need: 'baremetal' },
  cpio: { pkg: 'cpio', why: 'initramfs archives (bare-metal lanes, nix fixture)', need: 'baremetal' },
  'grub-mkrescue': { pkg: 'grub-common', why: 'the lab installer ISO (with grub-pc-bin)', need: 'baremetal' },
  xorriso: { pkg: 'xorriso', why: 'the lab installer ISO', need: 'baremetal' },
  openssl: { pkg: 'openssl', why: "the cluster CA: core-control-plane-ops-proof's mTLS certificates and CRL", need: 'lab' },
  chromium: { pkg: 'chromium', why: "serve-vm-webapp's headless-browser visit (playwright-core)", need: 'lab' },
} as const satisfies Record<string, { pkg: string; why: string; need: 'always' | 'lab' | 'nix' | 'baremetal' }>;
export type ToolName = keyof typeof TOOLS;

const found = new Map<string, string | null>();

export async function which(tool: string): Promise<string | null> {
  if (!found.has(tool)) {
    const r = await execa('sh', ['-c', 'command -v "$1"', 'sh', tool], { reject: false });
    found.set(tool, r.exitCode === 0 ? r.stdout.trim() : null);
  }
  return found.get(tool)!;
}

/** Fail with the Debian package name when a tool is missing; call before changing anything. */
export async function requireTools(...tools: ToolName[]): Promise<void> {
  for (const t of tools) if (!(await which(t))) throw new MissingTool(t, TOOLS[t].pkg);
}

/** Forget lookups, e.g. after `doctor --fix` installed packages. */
export function forgetTools(): void {
  found.clear();
}
