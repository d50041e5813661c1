import type { Node } from '../cluster/node.js';
import type { Disk } from '../services/plasmavmc.js';
import type { Fault } from './fault.js';

/** The fault's own nftables table: removed whole by the heal. */
const TABLE = 'ultracloud_fault_volume';

/**
 * A worker that cannot reach a volume's NBD export: its new connections to the export's address
 * and port are dropped (nftables output hook, a table of the fault's own). Heal: the table deleted.
 */
export function volumeUnreachable(from: Node, disk: Disk): Fault {
  const rules = `table inet ${TABLE} {\n  chain output {\n    type filter hook output priority 0; policy accept;\n    ip daddr ${disk.host} tcp dport ${disk.port} ct state new drop\n  }\n}\n`;
  return {
    kind: 'volume-unreachable',
    name: `volume-unreachable: ${from} cannot reach volume ${disk.volume} at ${disk.host}:${disk.port}`,
    targets: [from.name],
    invoke: async () => {
      await from.succeed(['nft', '-f', '-'], { stdin: rules });
    },
    heal: async () => {
      await from.exec(['nft', 'delete', 'table', 'inet', TABLE]);
    },
  };
}
