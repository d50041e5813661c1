import { CheckFailed, errorMessage } from '../../core/errors.js';
import { waitFor } from '../../core/retry.js';
import type { FlaredbClient } from '../../services/flaredb.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';

/** The event trigger flaredb-prepare installs in flaredb's database: DDL that drops is refused outside the contract phase. */
export const DDL_GUARD = 'flaredb_additive_only';
const REFUSED = /destructive DDL refused/;
const GUARD_STATES: Record<string, string> = { O: 'enabled', D: 'disabled', R: 'enabled for replicas only', A: 'always enabled' };

async function guardState(flaredb: FlaredbClient): Promise<string> {
  const [row] = await flaredb.query<{ e: string }>(flaredb.primary(), 'select evtenabled as e from pg_event_trigger where evtname = $1', [
    DDL_GUARD,
  ]);
  return row ? (GUARD_STATES[row.e] ?? row.e) : 'missing';
}

/** Columns of `table` and its row count as `node`'s server has them. */
async function shape(flaredb: FlaredbClient, node: Parameters<FlaredbClient['query']>[0], table: string) {
  const cols = await flaredb.query<{ c: string }>(
    node,
    "select column_name as c from information_schema.columns where table_schema = 'public' and table_name = $1 order by ordinal_position",
    [table],
  );
  const rows = cols.length ? Number((await flaredb.query<{ n: string }>(node, `select count(*) as n from ${table}`))[0]?.n) : 0;
  return { columns: cols.map((c) => c.c), rows };
}

/**
 * flaredb's additive-first migration contract on the primary and its standbys: an additive
 * migration (a nullable column, an index) leaves old readers and writers working and replicates;
 * DDL that drops (a column, an index, the table) is refused, naming the guard, and changes
 * nothing; the contract phase, declared explicitly, is where a drop goes (the step's cleanup).
 */
export const flaredbAdditiveMigration: Step<ClusterEnv<'flaredb'> & { state: RunState }> = {
  name: 'flaredb-additive-migration',
  proves:
    "an additive migration on flaredb's primary keeps old readers and writers working and reaches every standby; destructive DDL (drop column, drop index, drop table) is refused naming the additive-first guard, schema and rows unchanged; the declared contract phase may drop",
  needs: ['readiness'],
  run: async ({ services: { flaredb }, state }, step) => {
    const primary = flaredb.primary();
    const table = `ops_migration_${state.runId.replace(/-/g, '_')}`;
    const q = (sql: string) => flaredb.query(primary, sql);
    try {
      step.phase('v1 and the additive v2');
      await q(`create table ${table} (id int primary key, name text not null)`);
      await q(`insert into ${table} (id, name) values (1, 'one'), (2, 'two'), (3, 'three')`);
      await q(`alter table ${table} add column note text`); // nullable, no default: old writers need not know it
      await q(`create index ${table}_note on ${table} (note)`);
      const oldReader = await flaredb.query<{ id: number; name: string }>(primary, `select id, name from ${table} order by id`);
      await q(`insert into ${table} (id, name) values (4, 'four')`); // the old writer
      await q(`update ${table} set note = 'v2' where id = 4`);
      const want = { columns: ['id', 'name', 'note'], rows: 4 };
      const standbys = await waitFor(`every flaredb standby has ${table} at v2`, { timeoutMs: 60_000, intervalMs: 500 }, async () => {
        const seen = await Promise.all(flaredb.standbys().map(async (n) => ({ node: n.name, ...(await shape(flaredb, n, table)) })));
        const behind = seen.filter((s) => JSON.stringify({ columns: s.columns, rows: s.rows }) !== JSON.stringify(want));
        if (behind.length)
          throw new CheckFailed(`not yet: ${behind.map((b) => `${b.node} has ${b.columns.join(',')} and ${b.rows} rows`).join('; ')}`);
        return seen;
      });

      step.phase('destructive DDL');
      const attempts = [`alter table ${table} drop column name`, `drop index ${table}_note`, `drop table ${table}`];
      const outcomes = [];
      for (const sql of attempts) {
        try {
          await q(sql);
          outcomes.push({ sql, accepted: true });
        } catch (err) {
          outcomes.push({ sql, accepted: false, error: errorMessage(err) });
        }
      }
      const after = await shape(flaredb, primary, table);
      await step.json('flaredb-migration.json', { table, oldReader, standbys, destructive: outcomes, after });
      const accepted = outcomes.filter((o) => o.accepted).map((o) => o.sql);
      if (accepted.length)
        throw new CheckFailed(
          `flaredb on ${primary} accepted destructive DDL outside the contract phase: ${accepted.join('; ')} (its guard ${DDL_GUARD} is ${await guardState(flaredb)})`,
        );
      const other = outcomes.find((o) => !REFUSED.test(o.error ?? ''));
      if (other)
        throw new CheckFailed(
          `flaredb on ${primary} refused "${other.sql}" for another reason than the additive-first guard: ${other.error}`,
        );
      if (JSON.stringify(after) !== JSON.stringify(want))
        throw new CheckFailed(
          `flaredb on ${primary}: after the refused DDL ${table} has ${after.columns.join(',')} and ${after.rows} rows, not ${JSON.stringify(want)}`,
        );

      step.phase('contract phase');
      await q(`set flaredb.migration_phase = 'contract'; drop table ${table}`);
      return `additive v2 on ${primary} reached ${standbys.length} standbys; ${attempts.length} destructive statements refused by ${DDL_GUARD}; dropped in the declared contract phase`;
    } finally {
      // A run that went red leaves no table behind either.
      await q(`set flaredb.migration_phase = 'contract'; drop table if exists ${table}`).catch(() => undefined);
    }
  },
};
