import type { Node } from '../../cluster/node.js';
import { CheckFailed } from '../../core/errors.js';
import type { FlaredbClient } from '../../services/flaredb.js';
import type { ClusterEnv, Step } from '../lane.js';
import { BACKUP_DIR } from './chainfire-backup-restore.js';
import type { RunState } from './state.js';

/** The table the lane writes its rows into (one row set per run), beside what the services keep. */
export const ROWS_TABLE = 'durability_rows';
const ROWS = 64;
/** The dump's file name in its run dir (a negative control finds it by it). */
export const DUMP_FILE = 'flaredb.dump';
/** Every restore database's name starts so: a negative control finds them by it. */
export const RESTORE_DB_PREFIX = 'durability_restore_';

const PG = ['-h', '127.0.0.1', '-U', 'postgres'];

/** Per table: its row count and an md5 of its rows in order, as one database holds them. */
async function checksums(flaredb: FlaredbClient, node: Node, database: string): Promise<Record<string, string>> {
  return flaredb.session(
    node,
    async (q) => {
      const out: Record<string, string> = {};
      for (const { t } of await q<{ t: string }>("select tablename as t from pg_tables where schemaname = 'public' order by 1")) {
        const [row] = await q<{ n: string; md5: string | null }>(
          `select count(*)::text as n, md5(string_agg(x::text, E'\\n' order by x::text)) as md5 from public.${pgIdent(t)} x`,
        );
        out[t] = `${row?.n} rows, md5 ${row?.md5 ?? '-'}`;
      }
      return out;
    },
    { database },
  );
}

/** A table name from pg_tables as a quoted identifier (names come from the server, still quoted). */
const pgIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * flaredb's logical backup: pg_dump of the flaredb database on the primary (custom format, its
 * sha256 taken from the stream as it was written), checked against that sha256 before it is
 * restored, pg_restore into a fresh database, and every table compared row for row (count and an
 * md5 of the ordered rows) with the source as it was at the dump.
 */
export const flaredbDumpRestore: Step<ClusterEnv<'flaredb'> & { state: RunState }> = {
  name: 'flaredb-dump-restore',
  proves:
    "pg_dump of the flaredb database restores into a fresh database whose every table matches the source row for row (count and md5 of the ordered rows), the lane's own rows included; a dump changed after it was taken is refused by its sha256",
  needs: ['readiness'],
  run: async ({ services: { flaredb }, state }, step) => {
    const node = flaredb.primary();
    const source = flaredb.database;
    const dir = `${BACKUP_DIR}/${state.runId}`;
    const dump = `${dir}/${DUMP_FILE}`;
    const restoreDb = `${RESTORE_DB_PREFIX}${state.runId.replace(/[^a-z0-9]/g, '_')}`;
    try {
      step.phase('rows');
      await flaredb.query(node, `create table if not exists ${ROWS_TABLE} (run text, id int, body text not null, primary key (run, id))`);
      await flaredb.query(
        node,
        `insert into ${ROWS_TABLE} (run, id, body) select $1, i, md5($1 || i::text) from generate_series(1, ${ROWS}) i`,
        [state.runId],
      );

      step.phase('dump');
      const before = await checksums(flaredb, node, source);
      await node.succeed(['install', '-d', '-m', '0700', dir]);
      // The sha256 of the bytes pg_dump wrote, from the stream itself: whatever happens to the file later shows.
      const out = await node.succeed(['bash', '-c', 'set -o pipefail; pg_dump "$@" | tee "$0" | sha256sum', dump, ...PG, '-Fc', source], {
        timeoutMs: 120_000,
      });
      const sha256 = out.split(' ')[0]!;
      const after = await checksums(flaredb, node, source);
      const toc = await node.succeed(['pg_restore', '-l', dump]);
      await step.evidence('flaredb-dump-toc.txt', toc);
      const size = Number((await node.succeed(['stat', '-c', '%s', dump])).trim());
      await step.json('flaredb-dump.json', { node: node.name, database: source, file: dump, bytes: size, sha256, tables: before });

      step.phase('restore');
      const now = (await node.succeed(['sha256sum', dump])).split(' ')[0];
      if (now !== sha256)
        throw new CheckFailed(
          `${node}: the flaredb dump ${dump} changed after it was taken: sha256 ${now}, written as ${sha256}; not restoring it`,
        );
      await node.succeed(['createdb', ...PG, restoreDb]);
      await node.succeed(['pg_restore', ...PG, '--exit-on-error', '--no-owner', '-d', restoreDb, dump], { timeoutMs: 120_000 });

      step.phase('compare');
      const restored = await checksums(flaredb, node, restoreDb);
      const changed = Object.keys(before).filter((t) => before[t] !== after[t]);
      const compared = Object.keys(before).filter((t) => !changed.includes(t));
      const diff = compared
        .filter((t) => restored[t] !== before[t])
        .map((t) => `${t}: restored ${restored[t] ?? 'missing'}, source ${before[t]}`);
      const [mine] = await flaredb.query<{ n: string }>(
        node,
        `select count(*)::text as n from ${ROWS_TABLE} where run = $1`,
        [state.runId],
        {
          database: restoreDb,
        },
      );
      await step.json('flaredb-restore-compare.json', {
        source,
        restored: restoreDb,
        tables: Object.fromEntries(compared.map((t) => [t, { source: before[t], restored: restored[t] ?? null }])),
        changedDuringDump: changed,
        runRowsRestored: Number(mine?.n ?? 0),
        differences: diff,
      });
      if (!compared.includes(ROWS_TABLE))
        throw new CheckFailed(`${node}: ${ROWS_TABLE} changed while it was dumped; nothing proves its rows`);
      if (diff.length)
        throw new CheckFailed(
          `${node}: the database restored from the dump differs from ${source} in ${diff.length} table(s): ${diff.join('; ')}`,
        );
      return `${size} bytes dumped from ${source} on ${node}, restored into ${restoreDb}: ${compared.length} tables equal row for row (${ROWS} rows of this run)${changed.length ? `; ${changed.join(', ')} changed during the dump, not compared` : ''}`;
    } finally {
      await node.exec(['dropdb', ...PG, '--if-exists', restoreDb]);
      await node.exec(['rm', '-rf', '--one-file-system', dir]);
      await flaredb.query(node, `delete from ${ROWS_TABLE} where run = $1`, [state.runId]).catch(() => undefined);
    }
  },
};
