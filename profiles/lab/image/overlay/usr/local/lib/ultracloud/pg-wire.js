// A minimal PostgreSQL client (the lab's trust auth, the simple query protocol, text results) for
// services that cannot ship npm packages: one connection kept open, queries one at a time. Spawning
// psql per request costs seconds of CPU under TCG; a query on an open connection, milliseconds.
'use strict';
const net = require('node:net');

class PgConnection {
  constructor({ host, port = 5432, user = 'postgres', database, timeoutMs = 10000 }) {
    Object.assign(this, { host, port, user, database, timeoutMs });
    this.sock = null;
    this.chain = Promise.resolve();
  }

  /** Run one statement; resolves its rows (arrays of text values, null for NULL). */
  query(sql) {
    const run = this.chain.then(() => this.exchange(sql));
    this.chain = run.catch(() => {});
    return run;
  }

  async exchange(sql) {
    try {
      if (!this.sock) await this.open();
      return await this.roundTrip(Buffer.concat([Buffer.from('Q'), int32(Buffer.byteLength(sql) + 5), Buffer.from(`${sql}\0`)]));
    } catch (e) {
      this.close(); // a broken or timed-out connection is never reused
      throw Object.assign(e, { status: e.status || 503 });
    }
  }

  open() {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: this.host, port: this.port });
      sock.once('error', reject);
      sock.once('connect', () => {
        sock.removeListener('error', reject);
        sock.on('error', () => {});
        this.sock = sock;
        const params = Buffer.from(`user\0${this.user}\0database\0${this.database}\0\0`);
        this.roundTrip(Buffer.concat([int32(params.length + 8), int32(196608), params])).then(() => resolve(), reject);
      });
    });
  }

  /** Send a message; collect the server's answer up to ReadyForQuery. */
  roundTrip(msg) {
    const sock = this.sock;
    return new Promise((resolve, reject) => {
      let buf = Buffer.alloc(0);
      const rows = [];
      let error = null;
      const timer = setTimeout(() => finish(new Error(`postgres at ${this.host}: no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      const finish = (err) => {
        clearTimeout(timer);
        sock.removeListener('data', onData);
        sock.removeListener('close', onClose);
        err ? reject(err) : resolve(rows);
      };
      const onClose = () => finish(new Error(`postgres at ${this.host} closed the connection`));
      const onData = (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 5 && buf.length >= 1 + buf.readInt32BE(1)) {
          const type = String.fromCharCode(buf[0]);
          const body = buf.subarray(5, 1 + buf.readInt32BE(1));
          buf = buf.subarray(1 + buf.readInt32BE(1));
          if (type === 'R' && body.readInt32BE(0) !== 0) return finish(new Error(`postgres at ${this.host} wants authentication (code ${body.readInt32BE(0)}); the lab uses trust`));
          if (type === 'D') rows.push(dataRow(body));
          if (type === 'E') error = new Error(errorText(body));
          if (type === 'Z') return finish(error);
        }
      };
      sock.on('data', onData);
      sock.once('close', onClose);
      sock.write(msg);
    });
  }

  close() {
    this.sock?.destroy();
    this.sock = null;
  }
}

const int32 = (n) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

function dataRow(body) {
  const out = [];
  let at = 2;
  for (let i = 0; i < body.readInt16BE(0); i++) {
    const len = body.readInt32BE(at);
    at += 4;
    out.push(len < 0 ? null : body.subarray(at, at + len).toString('utf8'));
    if (len > 0) at += len;
  }
  return out;
}

/** ErrorResponse fields: S severity, C code, M message. */
function errorText(body) {
  const f = {};
  for (let at = 0; at < body.length && body[at] !== 0; ) {
    const end = body.indexOf(0, at + 1);
    f[String.fromCharCode(body[at])] = body.subarray(at + 1, end).toString('utf8');
    at = end + 1;
  }
  return `${f.S || 'ERROR'} ${f.C || ''}: ${f.M || 'unknown error'}`;
}

module.exports = { PgConnection };
