import type { Node } from '../cluster/node.js';
import type { FlaredbClient } from '../services/flaredb.js';
import type { Fault } from './fault.js';

/** flaredb without its additive-first guard: the event trigger disabled, so DDL that drops goes through. Heal: enabled again. */
export function flaredbDdlGuardDisabled(flaredb: FlaredbClient, node: Node, guard: string): Fault {
  const set = (how: 'disable' | 'enable') => flaredb.query(node, `alter event trigger ${guard} ${how}`).then(() => undefined);
  return {
    kind: 'flaredb-ddl-guard-disabled',
    name: `flaredb-ddl-guard-disabled: ${guard} disabled on ${node}`,
    targets: [node.name],
    invoke: () => set('disable'),
    heal: () => set('enable'),
  };
}
