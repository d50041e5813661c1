// chainfire (etcd v3) through its JSON gateway, for the lab's small services: the one place their
// state lives. Every call tries each endpoint in turn; an unreachable store is a 503 to callers.
'use strict';
const http = require('node:http');
const { request, sleep } = require('./http-json.js');

const b64 = (s) => Buffer.from(s).toString('base64');
const unb64 = (s) => Buffer.from(s || '', 'base64').toString();
/** The range end that selects every key under `prefix` (its last byte plus one). */
const prefixEnd = (prefix) => {
  const b = Buffer.from(prefix);
  b[b.length - 1] += 1;
  return b.toString('base64');
};
/** Longer than chainfire's progress-notify interval (5 s in the lab): a watch this silent lost its member. */
const WATCH_STALL_MS = 15000;
const unavailable = (msg) => Object.assign(new Error(`chainfire unavailable: ${msg}`), { status: 503 });

class Chainfire {
  /** endpoints: base URLs (http://ip:2379), tried in order starting from the last one that answered. */
  constructor(endpoints) {
    this.endpoints = endpoints;
    this.next = 0;
  }

  async call(path, body) {
    let last = 'no endpoint';
    for (let n = 0; n < this.endpoints.length; n++) {
      const i = (this.next + n) % this.endpoints.length;
      try {
        const r = await request('POST', `${this.endpoints[i]}${path}`, body);
        if (r.status === 200) {
          this.next = i;
          return r.body;
        }
        last = `${this.endpoints[i]}${path} answered ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`;
      } catch (e) {
        last = `${this.endpoints[i]}: ${e.message}`;
      }
    }
    throw unavailable(last);
  }

  async get(key) {
    const kv = (await this.call('/v3/kv/range', { key: b64(key) })).kvs?.[0];
    return kv ? { value: JSON.parse(unb64(kv.value)), modRevision: kv.mod_revision } : null;
  }

  /**
   * Every value under a prefix, in key order. `serializable`: answered by the member asked, with no
   * round to the leader (agents' reconcile reads: a stale answer is corrected by the next change).
   */
  async list(prefix, { serializable = false } = {}) {
    const r = await this.call('/v3/kv/range', { key: b64(prefix), range_end: prefixEnd(prefix), ...(serializable ? { serializable: true } : {}) });
    return (r.kvs || []).map((kv) => ({ key: unb64(kv.key), value: JSON.parse(unb64(kv.value)), modRevision: kv.mod_revision }));
  }

  /** How many keys are under a prefix (a liveness read: serializable, no leader round trip). */
  async count(prefix) {
    const r = await this.call('/v3/kv/range', { key: b64(prefix), range_end: prefixEnd(prefix), count_only: true, serializable: true });
    return Number(r.count || 0);
  }

  /** `list`, with the store revision it was read at (changes after it are `events(prefix, revision + 1)`). */
  async snapshot(prefix) {
    const r = await this.call('/v3/kv/range', { key: b64(prefix), range_end: prefixEnd(prefix) });
    const items = (r.kvs || []).map((kv) => ({ key: unb64(kv.key), value: JSON.parse(unb64(kv.value)), modRevision: kv.mod_revision, createRevision: kv.create_revision }));
    return { items, revision: Number(r.header.revision) };
  }

  /**
   * Every change under a prefix from `fromRevision` on, as { type: 'put'|'delete', key, value,
   * modRevision, createRevision } (a delete carries the value it removed). Returns { close, ended }:
   * `ended` resolves with why the stream stopped ('closed', or the store's reason, e.g. compaction).
   */
  events(prefix, fromRevision, onEvent) {
    const base = this.endpoints[this.next];
    let req;
    const ended = new Promise((resolve) => {
      req = http.request(`${base}/v3/watch`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        if (res.statusCode !== 200) return resolve(`chainfire ${base} refused the watch: HTTP ${res.statusCode}`);
        let buf = '';
        res.on('data', (d) => {
          buf += d;
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            let msg;
            try {
              msg = JSON.parse(buf.slice(0, nl)).result || {};
            } catch {
              return resolve(`chainfire ${base} sent a watch line that is not JSON: ${buf.slice(0, 120)}`);
            }
            buf = buf.slice(nl + 1);
            if (msg.compact_revision && msg.compact_revision !== '0') return resolve(`revision ${fromRevision} is compacted (oldest kept: ${msg.compact_revision})`);
            if (msg.canceled) return resolve(`watch canceled: ${msg.cancel_reason || 'by the store'}`);
            for (const e of msg.events || []) {
              const kv = e.type === 'DELETE' ? e.prev_kv || e.kv : e.kv;
              onEvent({
                type: e.type === 'DELETE' ? 'delete' : 'put',
                key: unb64(e.kv.key),
                value: kv && kv.value ? JSON.parse(unb64(kv.value)) : null,
                modRevision: e.kv.mod_revision,
                createRevision: kv && kv.create_revision,
              });
            }
          }
        });
        res.on('error', () => {});
        res.on('close', () => resolve(`chainfire ${base} ended the watch`));
      });
      req.on('error', (e) => resolve(`chainfire ${base}: ${e.message}`));
      req.end(JSON.stringify({ create_request: { key: b64(prefix), range_end: prefixEnd(prefix), start_revision: String(fromRevision), prev_kv: true } }));
    });
    let closed = false;
    return {
      close: () => {
        closed = true;
        req.destroy();
      },
      ended: ended.then((why) => (closed ? 'closed' : why)),
    };
  }

  async put(key, value, lease) {
    await this.call('/v3/kv/put', { key: b64(key), value: b64(JSON.stringify(value)), ...(lease ? { lease } : {}) });
  }

  async del(key) {
    await this.call('/v3/kv/deleterange', { key: b64(key) });
  }

  /** Put only if the key does not exist yet; false when it does. */
  async create(key, value) {
    const r = await this.call('/v3/kv/txn', {
      compare: [{ key: b64(key), target: 'CREATE', create_revision: '0' }],
      success: [{ request_put: { key: b64(key), value: b64(JSON.stringify(value)) } }],
    });
    return r.succeeded === true;
  }

  /** Put only if the key is unchanged since `modRevision` (optimistic concurrency); false otherwise. */
  async update(key, value, modRevision) {
    const r = await this.call('/v3/kv/txn', {
      compare: [{ key: b64(key), target: 'MOD', mod_revision: String(modRevision) }],
      success: [{ request_put: { key: b64(key), value: b64(JSON.stringify(value)) } }],
    });
    return r.succeeded === true;
  }

  /** Delete only if unchanged since `modRevision`. */
  async remove(key, modRevision) {
    const r = await this.call('/v3/kv/txn', {
      compare: [{ key: b64(key), target: 'MOD', mod_revision: String(modRevision) }],
      success: [{ request_delete_range: { key: b64(key) } }],
    });
    return r.succeeded === true;
  }

  async grant(ttlSeconds) {
    return (await this.call('/v3/lease/grant', { TTL: String(ttlSeconds) })).ID;
  }

  /** Remaining TTL after the refresh; 0 when the lease is gone. */
  async keepalive(id) {
    const r = await this.call('/v3/lease/keepalive', { ID: id });
    return Number(r.result?.TTL || 0);
  }

  /**
   * Keep `key` = value alive under a lease (a registration): re-granted and re-put whenever the
   * lease lapsed (a hung or partitioned holder comes back registered again).
   */
  register(key, value, ttlSeconds, log = console.error) {
    let lease = null;
    const beat = async () => {
      try {
        if (lease && (await this.keepalive(lease)) > 0) return;
        lease = await this.grant(ttlSeconds);
        await this.put(key, typeof value === 'function' ? value() : value, lease);
        log(`registered ${key} (lease ${lease}, ttl ${ttlSeconds}s)`);
      } catch (e) {
        lease = null;
        log(`registration ${key}: ${e.message}`);
      }
    };
    void beat();
    return setInterval(beat, Math.max(1000, (ttlSeconds * 1000) / 3));
  }

  /**
   * Call onChange (no arguments) after every change under one of the prefixes; reconnects forever.
   * A member that dies without closing the connection (a power cut) leaves a watch that hears
   * nothing, ever: each stream asks for progress notifications (chainfire sends one every
   * few seconds when idle) and is dropped for the next member once silent for `stallMs`.
   */
  watch(prefixes, onChange, { stallMs = WATCH_STALL_MS } = {}) {
    const one = async (prefix) => {
      for (let attempt = 0; ; attempt++) {
        const base = this.endpoints[this.next];
        await new Promise((resolve) => {
          let heard = Date.now();
          let created = false;
          const done = () => {
            clearInterval(guard);
            resolve();
          };
          const req = http.request(`${base}/v3/watch`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
            let buf = '';
            res.on('data', (d) => {
              heard = Date.now();
              buf += d;
              let nl = buf.indexOf('\n');
              while (nl >= 0) {
                const line = buf.slice(0, nl);
                buf = buf.slice(nl + 1);
                // Once a new stream is in place, whatever changed while there was none is read by the pass this starts.
                if (line.includes('"events"') || (!created && attempt > 0)) onChange();
                created = true;
                nl = buf.indexOf('\n');
              }
            });
            res.on('error', () => {}); // a dropped stream: 'close' follows
            res.on('close', done);
          });
          const guard = setInterval(() => {
            if (Date.now() - heard < stallMs) return;
            console.error(`chainfire watch on ${base} silent for ${stallMs / 1000} s; trying the next member`);
            this.next = (this.next + 1) % this.endpoints.length;
            req.destroy();
          }, Math.min(1000, stallMs / 2));
          req.on('error', () => {
            if (this.endpoints[this.next] === base) this.next = (this.next + 1) % this.endpoints.length;
            done();
          });
          req.end(JSON.stringify({ create_request: { key: b64(prefix), range_end: prefixEnd(prefix), progress_notify: true } }));
        });
        await sleep(1000);
      }
    };
    for (const p of prefixes) void one(p);
  }
}

/** The endpoints a node reaches chainfire at: CHAINFIRE_ENDPOINTS, or the local member. */
const chainfire = () => new Chainfire((process.env.CHAINFIRE_ENDPOINTS || 'http://127.0.0.1:2379').split(' ').filter(Boolean));

/**
 * Run `fn` (the whole reconcile pass) serially: after changes (coalesced), and every `resyncMs`
 * to repair drift. A failed pass is logged and retried on the next trigger.
 */
function reconciler(name, fn, resyncMs = 30000) {
  let running = false;
  let again = false;
  const trigger = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    do {
      again = false;
      try {
        await fn();
      } catch (e) {
        console.error(`${name}: reconcile failed: ${e.stack || e.message}`);
        await sleep(1000);
        again = true;
      }
    } while (again);
    running = false;
  };
  setInterval(trigger, resyncMs);
  void trigger();
  return trigger;
}

module.exports = { Chainfire, chainfire, reconciler };
