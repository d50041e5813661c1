import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Cluster } from '../../src/cluster/cluster.js';
import { findSnapshot, snapshotKey } from '../../src/cluster/snapshot.js';
import { loadProfile } from '../../src/config/load-profile.js';
import { clusterPaths } from '../../src/config/paths.js';
import type { BuiltImages } from '../../src/images/types.js';

/** Which snapshot a fresh run may trust: only a complete one, of this very image, profile, accelerator and key. */
describe('snapshot lookup', () => {
  const setup = async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'uc-snap-'));
    writeFileSync(path.join(work, '.ultracloud-work-root'), '');
    const profile = loadProfile('lab');
    const cluster = await Cluster.open(profile, clusterPaths(work, 'lab'), pino({ level: 'silent' }));
    const images = (id: string): BuiltImages => ({ id, reused: true, nodes: {} });
    /** Lay out a snapshot of image `id` as a save would leave it. */
    const save = (id: string, o: { manifest?: boolean; skipRam?: string } = {}) => {
      const key = snapshotKey(cluster, images(id), 'tcg');
      const dir = path.join(work, 'images', id, 'snapshots', key);
      for (const n of profile.nodes) {
        mkdirSync(path.join(dir, n.name), { recursive: true });
        writeFileSync(path.join(dir, n.name, 'disk.qcow2'), 'disk');
        if (o.skipRam !== n.name) writeFileSync(path.join(dir, n.name, 'ram'), 'ram');
      }
      if (o.manifest !== false)
        writeFileSync(
          path.join(dir, 'manifest.json'),
          JSON.stringify({
            format: 1,
            key,
            image: id,
            accel: 'tcg',
            createdAt: 'now',
            saveMs: 1,
            bytes: 1,
            nodes: profile.nodes.map((n) => n.name),
          }),
        );
      return key;
    };
    return { cluster, images, save };
  };

  it('finds a complete snapshot of the same image, accelerator and profile', async () => {
    const { cluster, images, save } = await setup();
    const key = save('img-a');
    expect((await findSnapshot(cluster, images('img-a'), 'tcg'))?.manifest.key).toBe(key);
  });

  it('never uses a snapshot of another image (a rebuilt image has a new id), nor one made under another accelerator', async () => {
    const { cluster, images, save } = await setup();
    save('img-a');
    expect(await findSnapshot(cluster, images('img-a.20261123T000000Z'), 'tcg')).toBeNull();
    expect(await findSnapshot(cluster, images('img-a'), 'kvm')).toBeNull();
    expect(snapshotKey(cluster, images('img-a'), 'tcg')).not.toBe(snapshotKey(cluster, images('img-b'), 'tcg'));
  });

  it("ignores a half-saved snapshot: no manifest, or a guest's RAM missing", async () => {
    const a = await setup();
    a.save('img-a', { manifest: false });
    expect(await findSnapshot(a.cluster, a.images('img-a'), 'tcg')).toBeNull();
    const b = await setup();
    b.save('img-a', { skipRam: 'node04' });
    expect(await findSnapshot(b.cluster, b.images('img-a'), 'tcg')).toBeNull();
  });
});
