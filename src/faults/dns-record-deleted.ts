import type { Node } from '../cluster/node.js';
import type { Fault } from './fault.js';

/** psql on the node's flashdns database (its zones, in flaredb); constant SQL only. */
const psql = (node: Node, sql: string) =>
  node.succeed(['psql', '-h', '127.0.0.1', '-U', 'postgres', '-d', 'flashdns', '-AtX', '-v', 'ON_ERROR_STOP=1', '-c', sql]);

/**
 * Every new A record deleted behind flashdns's API, in the database it serves from (a trigger on
 * the primary's `records` table): the API accepts the record, and it is gone before any node can
 * answer for it. Heal: the trigger and its function are dropped.
 */
export function dnsRecordDeleted(primary: Node): Fault {
  return {
    kind: 'dns-record-deleted',
    name: `dns-record-deleted on ${primary} (flashdns records in flaredb)`,
    targets: [primary.name],
    invoke: async () => {
      await psql(
        primary,
        `create or replace function ultracloud_fault_drop_a() returns trigger language plpgsql as $$ begin delete from records where id = new.id; return null; end $$;
         create or replace trigger ultracloud_fault_drop_a after insert on records for each row when (new.type = 'A') execute function ultracloud_fault_drop_a();`,
      );
    },
    heal: async () => {
      await psql(primary, 'drop trigger if exists ultracloud_fault_drop_a on records; drop function if exists ultracloud_fault_drop_a();');
    },
  };
}
