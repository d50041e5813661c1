// flaredb's HTTP surface (lab): a small KV API over the replicated PostgreSQL (table ultracloud_kv).
// Writes go to the primary, reads are served by the local server (a standby on node02/node03).
'use strict';
const { execFile } = require('node:child_process');
const { serve } = require('./http-json.js');

const PORT = Number(process.env.FLAREDB_HTTP_PORT || 8081);
const PRIMARY = process.env.FLAREDB_PRIMARY_IP || '127.0.0.1';
const lit = (s) => `'${String(s).replace(/'/g, "''")}'`;

function psql(host, sql) {
  return new Promise((resolve, reject) => {
    execFile('psql', ['-h', host, '-U', 'postgres', '-d', 'flaredb', '-AtX', '-v', 'ON_ERROR_STOP=1', '-c', sql], { timeout: 10000 }, (err, stdout, stderr) =>
      err ? reject(Object.assign(new Error(stderr.trim() || err.message), { status: 503 })) : resolve(stdout.trim()));
  });
}

serve('flaredb-http', PORT, {
  'GET /health': async () => {
    const rec = await psql('127.0.0.1', 'select pg_is_in_recovery()');
    return [200, { status: 'ok', service: 'flaredb', role: rec === 't' ? 'standby' : 'primary', node: process.env.NODE_NAME }];
  },
  'GET /v1/kv/:key': async (_r, p) => {
    const v = await psql('127.0.0.1', `select v from ultracloud_kv where k = ${lit(p.key)}`);
    return v === '' ? [404, { error: 'not found', key: p.key }] : [200, { key: p.key, value: v }];
  },
  'PUT /v1/kv/:key': async (_r, p, body) => {
    await psql(PRIMARY, `insert into ultracloud_kv (k, v) values (${lit(p.key)}, ${lit(body.value)}) on conflict (k) do update set v = excluded.v`);
    return [200, { key: p.key, value: body.value }];
  },
});
