// What the lab's tenant-scoped control APIs share: names, ids, and reading a tenant's own object.
'use strict';
const crypto = require('node:crypto');
const { fail } = require('./http-json.js');

const NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
const isName = (v) => typeof v === 'string' && NAME.test(v);
/**
 * Random bytes that differ even between two resumptions of one memory snapshot: a restored guest
 * resumes OpenSSL's generator in the state it was saved with, so the wall clock (stepped to the
 * host's on restore) and a counter are hashed in with it.
 */
let drawn = 0;
const uniqueBytes = (n) =>
  crypto.createHash('sha256').update(crypto.randomBytes(16)).update(`${Date.now()} ${process.hrtime.bigint()} ${++drawn}`).digest().subarray(0, n);
/** An id: a kind letter and 10 hex digits (short enough for interface names). */
const newId = (kind) => `${kind}${uniqueBytes(5).toString('hex')}`;

/** `owned(kind, id, tenant)`: the tenant's own object under `${root}/${kind}/${id}`, or 404 (another tenant's does not exist for it). */
const ownedIn = (cf, root) => async (kind, id, tenant) => {
  const got = await cf.get(`${root}/${kind}/${id}`);
  if (!got || got.value.tenant !== tenant) throw fail(404, `no ${kind.replace(/s$/, '')} ${id}`);
  return got;
};

module.exports = { NAME, isName, newId, uniqueBytes, ownedIn };
