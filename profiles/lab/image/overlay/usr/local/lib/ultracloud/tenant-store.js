// What the lab's tenant-scoped control APIs share: names, ids, and reading a tenant's own object.
'use strict';
const crypto = require('node:crypto');
const { fail } = require('./http-json.js');

const NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
const isName = (v) => typeof v === 'string' && NAME.test(v);
/** An id: a kind letter and 10 hex digits (short enough for interface names). */
const newId = (kind) => `${kind}${crypto.randomBytes(5).toString('hex')}`;

/** `owned(kind, id, tenant)`: the tenant's own object under `${root}/${kind}/${id}`, or 404 (another tenant's does not exist for it). */
const ownedIn = (cf, root) => async (kind, id, tenant) => {
  const got = await cf.get(`${root}/${kind}/${id}`);
  if (!got || got.value.tenant !== tenant) throw fail(404, `no ${kind.replace(/s$/, '')} ${id}`);
  return got;
};

module.exports = { NAME, isName, newId, ownedIn };
