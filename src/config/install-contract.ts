import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { UsageError } from '../core/errors.js';
import { formatZodIssues } from './load-profile.js';

/**
 * The bare-metal install contract (the seeds' verify-baremetal-iso.sh shape): classes and pools
 * own the install plan, node records carry only identity plus a genuinely host-specific
 * desired system and its health check. `chassis` is how the lab's QEMU stands in for each machine.
 */
const id = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and dashes');

export const InstallPlan = z.strictObject({
  profile: id,
  /** A stable selector, never /dev/vdX order: /dev/disk/by-id/... */
  disk: z.string().regex(/^\/dev\/disk\/by-(id|path|uuid|label)\/\S+$/, 'a stable /dev/disk/by-id/... path'),
});

export const DesiredSystem = z.strictObject({
  target_system: id,
  /** Shell command run on the node; exit 0 = healthy. */
  health_check: z.string().min(1),
  health_timeout_s: z.number().int().min(1).max(600).default(20),
});

export const NodeRegistration = z.strictObject({
  id,
  /** What the machine reports at phone-home (SMBIOS system serial). */
  machine_id: z.string().min(1),
  class: id,
  desired_system: DesiredSystem.optional(),
});
export type NodeRegistration = z.infer<typeof NodeRegistration>;

const Pools = z.record(id, z.strictObject({ description: z.string().optional() }));
const Classes = z.record(id, z.strictObject({ pool: id, install_plan: InstallPlan }));

/** What a deployer serves from: pools and the classes that own install plans (the cluster's deployer reads only this). */
export const DeployerContract = z.strictObject({ description: z.string().optional(), pools: Pools, classes: Classes });

export const InstallContract = z
  .strictObject({
    description: z.string().optional(),
    pools: Pools,
    classes: Classes,
    nodes: z.array(NodeRegistration).min(1),
    chassis: z.record(
      id,
      z.strictObject({
        disk_serial: z.string().regex(/^[A-Za-z0-9_-]{1,20}$/, 'at most 20 characters (virtio-blk serial)'),
        disk_mib: z.number().int().min(64),
        memory_mib: z.number().int().min(128),
      }),
    ),
  })
  .superRefine((c, ctx) => {
    for (const [name, k] of Object.entries(c.classes))
      if (!c.pools[k.pool]) ctx.addIssue({ code: 'custom', path: ['classes', name, 'pool'], message: `unknown pool "${k.pool}"` });
    c.nodes.forEach((n, i) => {
      if (!c.classes[n.class]) ctx.addIssue({ code: 'custom', path: ['nodes', i, 'class'], message: `unknown class "${n.class}"` });
      if (!c.chassis[n.id]) ctx.addIssue({ code: 'custom', path: ['chassis'], message: `no chassis for node "${n.id}"` });
    });
  });
export type InstallContract = z.infer<typeof InstallContract>;

export function loadInstallContract(profileDir: string): { contract: InstallContract; file: string } {
  const file = path.join(profileDir, 'baremetal', 'contract.json');
  if (!existsSync(file)) throw new UsageError(`this profile has no bare-metal install contract (${file})`);
  const parsed = InstallContract.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new UsageError(`install contract ${file} is invalid:\n${formatZodIssues(parsed.error)}`);
  return { contract: parsed.data, file };
}
