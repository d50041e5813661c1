import type { Cluster } from '../../cluster/cluster.js';
import { buildClusterImages, cleanCluster, startCluster } from '../../cluster/lifecycle.js';
import { findSnapshot, restoreSnapshot, type Snapshot, saveSnapshot } from '../../cluster/snapshot.js';
import { CheckFailed, StepSkipped } from '../../core/errors.js';
import type { RunRecord } from '../../core/run-record.js';
import { seconds } from '../../core/time.js';
import type { BuiltImages } from '../../images/types.js';
import { type AccelChoice, chooseAccel } from '../../vm/accel-probe.js';
import type { Step } from '../lane.js';

/** How `fresh-<lane>` boots: chosen on the command line. */
export interface BootOptions {
  accel: AccelChoice;
  /** Per wave: launch to every node of the wave ready. */
  waveTimeoutMs: number;
  /** Boot for real even when a snapshot of this cluster exists. */
  coldBoot: boolean;
}

export interface FreshCtx {
  cluster: Cluster;
  rec: RunRecord;
  boot: BootOptions & { images?: BuiltImages; accelUsed?: 'kvm' | 'tcg'; restored?: Snapshot };
}

/** After a restore every guest's clock must be this close to the host's. */
const RESTORED_CLOCK_S = 2;

/** The first steps of every `fresh-<lane>`, so junit.xml shows where the minutes went. */
export const image: Step<FreshCtx> = {
  name: 'image',
  proves: "the profile's node images build (lab: mmdebstrap, content-hashed cache; nix: one nix build)",
  run: async ({ cluster, boot }, step) => {
    const t0 = Date.now();
    const images = await buildClusterImages(cluster, step.log);
    boot.images = images;
    await step.json('images.json', images);
    return `image ${images.id} ${images.reused ? 'reused' : 'built'} in ${seconds(Date.now() - t0)}`;
  },
};

/** Kernel-only guests (console-marker readiness) boot in seconds and hold no state worth saving. */
const snapshots = (cluster: Cluster) => cluster.profile.readiness.kind === 'ssh-units';

export const boot: Step<FreshCtx> = {
  name: 'boot',
  proves:
    'the old cluster is cleaned away, then every node is restored from a snapshot of this cluster (clocks stepped to the host) or boots wave by wave, and is ready',
  needs: ['image'],
  run: async ({ cluster, boot, rec }, step) => {
    const removed = await cleanCluster(cluster);
    const images = boot.images!;
    const accel = await chooseAccel(boot.accel, (m) => step.log.warn(m));
    boot.accelUsed = accel;
    const snap = !boot.coldBoot && snapshots(cluster) ? await findSnapshot(cluster, images, accel) : null;
    if (snap) {
      const r = await restoreSnapshot(cluster, snap, images, step.log);
      boot.restored = snap;
      const detail = {
        mode: 'snapshot',
        snapshot: snap.manifest.key,
        snapshotDir: snap.dir,
        image: images.id,
        cleaned: removed,
        accel,
        restoreMs: r.ms,
        clockSkewS: Object.fromEntries(Object.entries(r.skew).map(([n, x]) => [n, x.skewS])),
        clockSkewErrS: Object.fromEntries(Object.entries(r.skew).map(([n, x]) => [n, x.errS])),
      };
      rec.setBoot({ mode: 'snapshot', snapshot: snap.manifest.key });
      rec.event('info', 'cluster restored from a snapshot', detail);
      await step.json('boot.json', detail);
      // Off only when even the measurement's uncertainty cannot explain it.
      const off = Object.entries(r.skew).filter(([, x]) => Math.abs(x.skewS) - x.errS > RESTORED_CLOCK_S);
      if (off.length)
        throw new CheckFailed(
          `after the restore, clock(s) still off the host's by more than ${RESTORED_CLOCK_S} s: ${off.map(([n, x]) => `${n} ${x.skewS} s (± ${x.errS} s)`).join(', ')}`,
        );
      return `${cluster.nodes().length} nodes restored from snapshot ${snap.manifest.key} in ${seconds(r.ms)} (${accel}); clocks within ${Math.max(...Object.values(r.skew).map((x) => Math.abs(x.skewS))).toFixed(2)} s of the host's`;
    }
    const t0 = Date.now();
    const r = await startCluster(cluster, { accel, waveTimeoutMs: boot.waveTimeoutMs, images });
    const detail = {
      mode: 'cold',
      image: images.id,
      cleaned: removed,
      waves: r.waves,
      accel: r.accel,
      readyMs: r.readyMs,
      nodes: r.timeline,
      bootMs: Date.now() - t0,
    };
    rec.setBoot({ mode: 'cold' });
    rec.event('info', 'fresh cluster booted', detail);
    await step.json('boot.json', detail);
    return `${r.waves.flat().length} nodes booted in ${r.waves.length} waves in ${seconds(Date.now() - t0)} (${r.accel})${boot.coldBoot ? ' (--cold-boot)' : ''}`;
  },
};

/** Saves the cluster just booted, once per key, so the next fresh run restores it instead of booting. */
export const snapshot: Step<FreshCtx> = {
  name: 'snapshot',
  proves: 'a cold-booted cluster is saved (RAM by QEMU migration to files, disk overlays frozen) for the next fresh run, then resumes',
  needs: ['boot'],
  run: async ({ cluster, boot }, step) => {
    if (boot.restored) throw new StepSkipped(`restored from snapshot ${boot.restored.manifest.key}: nothing new to save`);
    if (!snapshots(cluster)) throw new StepSkipped('kernel-only guests are not snapshotted (they boot in seconds)');
    const images = boot.images!;
    const accel = boot.accelUsed!;
    const have = await findSnapshot(cluster, images, accel);
    if (have) throw new StepSkipped(`snapshot ${have.manifest.key} of this cluster exists`);
    const s = await saveSnapshot(cluster, images, accel, step.log);
    await step.json('snapshot.json', s.manifest);
    return `saved snapshot ${s.manifest.key} in ${seconds(s.manifest.saveMs)} (${(s.manifest.bytes / 2 ** 30).toFixed(2)} GiB) at ${s.dir}`;
  },
};
