import type { Node } from '../cluster/node.js';
import type { Fault } from './fault.js';
import { startHook } from './start-hook.js';

/** Where coronafs-agent keeps a node's local volumes (<id>.img). */
const VOLUMES = '/var/lib/coronafs';

/**
 * A disk that loses data across a crash: when `node` boots again, before coronafs-agent starts,
 * the first byte of every local volume is zeroed. Nothing happens until the node restarts (the
 * drop-in is in /etc, so it survives a power cut). Heal: the drop-in removed.
 */
export function volumeCorruptedAtBoot(node: Node, unit: string): Fault {
  return startHook({
    kind: 'volume-corrupted-at-boot',
    name: `volume-corrupted-at-boot: ${unit} on ${node} starts after the first byte of every volume in ${VOLUMES} is zeroed`,
    node,
    unit,
    // $$: systemd's escape for the shell's $.
    command: `/bin/sh -c 'for f in ${VOLUMES}/*.img; do [ -f "$$f" ] && dd if=/dev/zero of="$$f" bs=1 count=1 conv=notrunc status=none; done; true'`,
    acrossBoots: true,
  });
}
