import type { Cluster } from '../../cluster/cluster.js';
import { buildClusterImages, cleanCluster, startCluster } from '../../cluster/lifecycle.js';
import type { RunRecord } from '../../core/run-record.js';
import { seconds } from '../../core/time.js';
import type { BuiltImages } from '../../images/types.js';
import type { AccelChoice } from '../../vm/accel-probe.js';
import type { Step } from '../lane.js';

/** How `fresh-<lane>` boots: chosen on the command line. */
export interface BootOptions {
  accel: AccelChoice;
  /** Per wave: launch to every node of the wave ready. */
  waveTimeoutMs: number;
}

export interface FreshCtx {
  cluster: Cluster;
  rec: RunRecord;
  boot: BootOptions & { images?: BuiltImages };
}

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

export const boot: Step<FreshCtx> = {
  name: 'boot',
  proves: 'the old cluster is cleaned away, then every node boots wave by wave (dependsOn) and is ready',
  needs: ['image'],
  run: async ({ cluster, boot, rec }, step) => {
    const removed = await cleanCluster(cluster);
    const t0 = Date.now();
    const r = await startCluster(cluster, { accel: boot.accel, waveTimeoutMs: boot.waveTimeoutMs, images: boot.images });
    const detail = {
      image: boot.images?.id,
      cleaned: removed,
      waves: r.waves,
      accel: r.accel,
      readyMs: r.readyMs,
      bootMs: Date.now() - t0,
    };
    rec.event('info', 'fresh cluster booted', detail);
    await step.json('boot.json', detail);
    return `${r.waves.flat().length} nodes booted in ${r.waves.length} waves in ${seconds(Date.now() - t0)} (${r.accel})`;
  },
};
