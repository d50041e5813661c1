import { describe, expect, it } from 'vitest';
import { differences } from '../../src/lanes/steps/chainfire-backup-restore.js';
import { qemuIoBytes } from '../../src/lanes/steps/coronafs-local-outage.js';

const kv = (key: string, value: string, modRevision: number, leased = false) => ({ key, value, modRevision, leased });

describe("durability-proof's comparisons", () => {
  it('chainfire: a restored copy equal to the live store at the revision has no differences; leased keys are not compared', () => {
    const live = { revision: 9, kvs: [kv('/a', '1', 3), kv('/b', '2', 4), kv('/lease', 'x', 5, true)] };
    expect(differences(live, { revision: 9, kvs: [kv('/a', '1', 3), kv('/b', '2', 4)] })).toEqual([]);
  });

  it('chainfire: a missing key, a changed value or revision and an extra key are each named', () => {
    const live = { revision: 9, kvs: [kv('/a', '1', 3), kv('/b', '2', 4), kv('/c', '3', 5)] };
    const restored = { revision: 9, kvs: [kv('/b', '2', 4), kv('/c', 'X', 5), kv('/d', '4', 6)] };
    expect(differences(live, restored)).toEqual([
      '/a: missing from the restored copy',
      '/c: restored as "X" (rev 5), live "3" (rev 5)',
      '/d: in the restored copy, not in the live store at that revision',
    ]);
  });

  it("coronafs: qemu-io's hex dump reads back as bytes, a short last line and a text column that looks like hex included", () => {
    const out = [
      '00000000:  63 6f 72 6f 6e 61 66 73 2d 64 75 72 61 62 69 6c  coronafs.durabil',
      '00000010:  61 62  ab',
      'read 18/18 bytes at offset 0',
      '18 bytes, 1 ops; 00.00 sec (354.794 KiB/sec and 15796.0415 ops/sec)',
    ].join('\n');
    expect(qemuIoBytes(out).toString()).toBe('coronafs-durabilab');
  });
});
