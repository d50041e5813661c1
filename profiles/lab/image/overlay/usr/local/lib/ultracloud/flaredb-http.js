// flaredb's HTTP surface (lab): a small KV API over the replicated PostgreSQL (table ultracloud_kv).
// Writes go to the primary, reads are served by the local server (a standby on node02/node03).
'use strict';
const { serve } = require('./http-json.js');
const { PgConnection } = require('./pg-wire.js');

const PORT = Number(process.env.FLAREDB_HTTP_PORT || 8081);
const PRIMARY = process.env.FLAREDB_PRIMARY_IP || '127.0.0.1';
const lit = (s) => `'${String(s).replace(/'/g, "''")}'`;
const local = new PgConnection({ host: '127.0.0.1', database: 'flaredb' });
const primary = new PgConnection({ host: PRIMARY, database: 'flaredb' });
/** The first column of the first row, '' when there is none (what psql -At printed). */
const scalar = async (conn, sql) => (await conn.query(sql))[0]?.[0] ?? '';

serve('flaredb-http', PORT, {
  'GET /health': async () => {
    const rec = await scalar(local, 'select pg_is_in_recovery()');
    return [200, { status: 'ok', service: 'flaredb', role: rec === 't' ? 'standby' : 'primary', node: process.env.NODE_NAME }];
  },
  'GET /v1/kv/:key': async (_r, p) => {
    const v = await scalar(local, `select v from ultracloud_kv where k = ${lit(p.key)}`);
    return v === '' ? [404, { error: 'not found', key: p.key }] : [200, { key: p.key, value: v }];
  },
  'PUT /v1/kv/:key': async (_r, p, body) => {
    await primary.query(`insert into ultracloud_kv (k, v) values (${lit(p.key)}, ${lit(body.value)}) on conflict (k) do update set v = excluded.v`);
    return [200, { key: p.key, value: body.value }];
  },
  /** A counter: one atomic statement on the primary (absent counts as 0); a value that is not an integer is a 409. */
  'POST /v1/kv/:key/increment': async (_r, p) => {
    const k = lit(p.key);
    const v = await scalar(
      primary,
      `insert into ultracloud_kv (k, v) values (${k}, '1') on conflict (k) do update set v = (ultracloud_kv.v::bigint + 1)::text where ultracloud_kv.v ~ '^-?[0-9]{1,18}$' returning v`,
    );
    if (v === '') return [409, { error: `${p.key} holds a value that is not an integer`, key: p.key }];
    return [200, { key: p.key, value: v }];
  },
});
