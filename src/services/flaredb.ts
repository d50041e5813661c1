import pg from 'pg';
import { z } from 'zod';
import type { Node } from '../cluster/node.js';
import { CheckFailed, errorMessage } from '../core/errors.js';
import { defineService, ServiceClient } from './service.js';

/** flaredb in the lab is PostgreSQL 15: a primary streaming to standbys; lanes speak SQL with a real client (pg). */
const Params = z.strictObject({
  /** The node whose server is the primary; every other flaredb node is a standby. */
  primary: z.string().min(1),
  database: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'a PostgreSQL identifier'),
  /** The key-value table (k text primary key, v text) lanes write through. */
  table: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'a PostgreSQL identifier'),
  /** Standbys the primary must stream to; default: every flaredb node but the primary. */
  standbys: z.number().int().min(0).optional(),
});
type Params = z.output<typeof Params>;

export interface ReplicationRow {
  application_name: string;
  client_addr: string | null;
  state: string;
}

/** A statement on a session's connection; rows as objects. */
export type Query = <R extends Record<string, unknown>>(sql: string, values?: unknown[]) => Promise<R[]>;

export class FlaredbClient extends ServiceClient<Params> {
  primary(): Node {
    return this.svc.node(this.svc.params.primary);
  }

  standbys(): Node[] {
    return this.svc.nodes().filter((n) => n.name !== this.svc.params.primary);
  }

  expectedStandbys(): number {
    return this.svc.params.standbys ?? this.standbys().length;
  }

  /** The database flaredb's services keep their tables in. */
  get database(): string {
    return this.svc.params.database;
  }

  /** One statement on `node`'s own server (flaredb's database, or `database`), through an SSH-forwarded port; rows as objects. */
  query<R extends Record<string, unknown>>(node: Node, sql: string, values: unknown[] = [], o: { database?: string } = {}): Promise<R[]> {
    return this.session(node, (q) => q<R>(sql, values), o);
  }

  /** Several statements on one connection to `node`'s server (a batch of reads need not pay a connection each). */
  async session<T>(node: Node, fn: (q: Query) => Promise<T>, o: { database?: string } = {}): Promise<T> {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: await node.forward(this.svc.port('sql')),
      user: 'postgres',
      database: o.database ?? this.svc.params.database,
      connectionTimeoutMillis: 10_000,
      query_timeout: 20_000,
    });
    client.on('error', () => {}); // a server that goes away mid-query surfaces as the query's rejection
    let sql = '(connect)';
    try {
      await client.connect();
      return await fn(async <R extends Record<string, unknown>>(text: string, values: unknown[] = []) => {
        sql = text;
        return (await client.query<R>(text, values)).rows;
      });
    } catch (err) {
      if (err instanceof CheckFailed) throw err;
      throw new CheckFailed(`${node}: flaredb: ${errorMessage(err)} (SQL: ${sql.slice(0, 120)})`);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** pg_stat_replication on the primary: who streams, and in what state. */
  replication(): Promise<ReplicationRow[]> {
    return this.query<ReplicationRow & Record<string, unknown>>(
      this.primary(),
      'select application_name, client_addr::text, state from pg_stat_replication order by 1',
    );
  }

  async inRecovery(node: Node): Promise<boolean> {
    const [row] = await this.query<{ r: boolean }>(node, 'select pg_is_in_recovery() as r');
    return row?.r === true;
  }

  /** Write a key on the primary (the only writable server). */
  async put(key: string, value: string): Promise<void> {
    await this.query(
      this.primary(),
      `insert into ${this.svc.params.table} (k, v) values ($1, $2) on conflict (k) do update set v = excluded.v`,
      [key, value],
    );
  }

  /** Read a key from `node`'s own server (a standby answers from what it replayed). */
  async get(node: Node, key: string): Promise<string | null> {
    const [row] = await this.query<{ v: string }>(node, `select v from ${this.svc.params.table} where k = $1`, [key]);
    return row?.v ?? null;
  }
}

export const flaredb = defineService({
  name: 'flaredb',
  description: 'replicated KV and SQL metadata store (lab: PostgreSQL 15, primary + streaming standbys)',
  params: Params,
  client: (svc) => new FlaredbClient(svc),
});
