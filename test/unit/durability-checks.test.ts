import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { corruptDumps } from '../../src/faults/backup-corruption.js';
import { differences } from '../../src/lanes/steps/chainfire-backup-restore.js';
import { qemuIoBytes, qemuIoReads } from '../../src/lanes/steps/coronafs-local-outage.js';

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

  it("coronafs: one qemu-io run's reads come apart at each read's summary line, in order", () => {
    const out = [
      '00000000:  73 65 65 64  seed',
      'read 4/4 bytes at offset 0',
      '4 bytes, 1 ops; 00.00 sec (1 KiB/sec and 250 ops/sec)',
      '00100000:  ab ab ab  ...',
      'read 3/3 bytes at offset 1048576',
      '3 bytes, 1 ops; 00.00 sec (1 KiB/sec and 250 ops/sec)',
    ].join('\n');
    expect(qemuIoReads(out).map((b) => b.toString('hex'))).toEqual(['73656564', 'ababab']);
  });

  it('flaredb-dump-corrupted: the nemesis changes a dump in a run dir made after it started, after its bytes were hashed on the way', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'uc-nemesis-'));
    const nemesis = execa('node', ['-e', corruptDumps(root, 'flaredb.dump')], { reject: false, all: true });
    let said = '';
    try {
      await new Promise((ok) => setTimeout(ok, 500)); // its watch in place
      const run = path.join(root, 'run-1');
      mkdirSync(run);
      await new Promise((ok) => setTimeout(ok, 200));
      const file = path.join(run, 'flaredb.dump');
      const written = await execa('bash', ['-c', 'set -o pipefail; head -c 65536 /dev/urandom | tee "$0" | sha256sum', file]);
      await new Promise((ok) => setTimeout(ok, 500));
      const now = createHash('sha256').update(readFileSync(file)).digest('hex');
      expect(now).not.toBe(written.stdout.split(' ')[0]);
    } finally {
      nemesis.kill('SIGKILL');
      said = String((await nemesis).all);
      rmSync(root, { recursive: true, force: true });
    }
    expect(said).toMatch(/inverted the byte at \d+ of .*flaredb\.dump/);
  });
});
