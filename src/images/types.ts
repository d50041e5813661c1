/** What the launcher needs to boot one node, whatever built it. */
export interface BootArtifacts {
  /** Read-only base disk; each node boots a qcow2 overlay on it. Absent for kernel-only (initramfs) nodes. */
  baseDisk?: string;
  kernel: string;
  initrd?: string;
  /** Kernel command line (the launcher may append to it). */
  cmdline: string;
}

export interface BuiltImages {
  /** Content hash or nix output path that identifies this build. */
  id: string;
  reused: boolean;
  nodes: Record<string, BootArtifacts>;
}
