import type { Node } from '../cluster/node.js';
import type { Fault } from './fault.js';

export interface TcpBlock {
  kind: string;
  name: string;
  /** The fault's own nftables table (inet ultracloud_fault_<table>): the heal deletes it whole. */
  table: string;
  /** output: connections the node opens; forward: connections it routes (a tenant network's guests). */
  hook: 'output' | 'forward';
  from?: string;
  to: string;
  port: number;
  /** drop: the peer sees silence (a timeout); reject: a TCP reset at once. */
  verdict: 'drop' | 'reject';
}

/** New TCP connections through `node` to an address and port are dropped or reset (nftables, a table of the fault's own). */
export function tcpBlocked(node: Node, b: TcpBlock): Fault {
  const table = `ultracloud_fault_${b.table}`;
  const match = `${b.from ? `ip saddr ${b.from} ` : ''}ip daddr ${b.to} tcp dport ${b.port} ct state new`;
  const rules = `table inet ${table} {\n  chain ${b.hook} {\n    type filter hook ${b.hook} priority 0; policy accept;\n    ${match} ${b.verdict === 'reject' ? 'reject with tcp reset' : 'drop'}\n  }\n}\n`;
  return {
    kind: b.kind,
    name: b.name,
    targets: [node.name],
    invoke: async () => {
      await node.succeed(['nft', '-f', '-'], { stdin: rules });
    },
    heal: async () => {
      await node.exec(['nft', 'delete', 'table', 'inet', table]);
    },
  };
}
