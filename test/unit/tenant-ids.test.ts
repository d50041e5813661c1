import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

/**
 * Ids and MACs made by the lab's control APIs (the file the image ships) must differ between two
 * resumptions of one memory snapshot, where OpenSSL's generator and every counter resume in the
 * same state. Each child here is such a resumption: its generator pinned to the same bytes.
 */
const store = path.join(REPO, 'profiles/lab/image/overlay/usr/local/lib/ultracloud/tenant-store.js');
const resumed = `
const crypto = require('node:crypto');
crypto.randomBytes = (n) => Buffer.alloc(n, 7);
const { newId, uniqueBytes } = require(${JSON.stringify(store)});
console.log(JSON.stringify([newId('v'), uniqueBytes(3).toString('hex')]));
`;

describe('tenant ids', () => {
  it('differ between two resumptions of one snapshot (same generator state)', async () => {
    const runs = await Promise.all([0, 1, 2].map(() => execa('node', ['-e', resumed])));
    const got = runs.map((r) => JSON.parse(r.stdout) as [string, string]);
    for (const [id] of got) expect(id).toMatch(/^v[0-9a-f]{10}$/);
    expect(new Set(got.map(([id]) => id)).size).toBe(3);
    expect(new Set(got.map(([, mac]) => mac)).size).toBe(3);
  });
});
