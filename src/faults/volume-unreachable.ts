import type { Node } from '../cluster/node.js';
import type { Disk } from '../services/plasmavmc.js';
import type { Fault } from './fault.js';
import { tcpBlocked } from './tcp-blocked.js';

/** A worker that cannot reach a volume's NBD export: its new connections to the export are dropped. */
export function volumeUnreachable(from: Node, disk: Disk): Fault {
  return tcpBlocked(from, {
    kind: 'volume-unreachable',
    name: `volume-unreachable: ${from} cannot reach volume ${disk.volume} at ${disk.host}:${disk.port}`,
    table: 'volume',
    hook: 'output',
    to: disk.host,
    port: disk.port,
    verdict: 'drop',
  });
}
