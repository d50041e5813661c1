import type { Logger } from 'pino';
import type { ClusterPaths } from '../config/paths.js';
import type { LoadedProfile } from '../config/profile.js';
import { buildLabImage, labImageById } from './lab-image.js';
import { buildNixImages, nixImageById } from './nix-image.js';
import { pruneBuilds } from './prune.js';
import type { BuiltImages } from './types.js';

export interface BuildOptions {
  force?: boolean;
  /** Every line the builder prints (nix's transcript). */
  transcript?: (line: string) => void;
  /** Builds that node disks still sit on (the cluster layer knows): never pruned. */
  inUse?: Set<string>;
}

/** The ImageProvider switch: one place that knows which builder serves a profile. */
export async function buildImages(profile: LoadedProfile, paths: ClusterPaths, log: Logger, opts: BuildOptions = {}): Promise<BuiltImages> {
  let built: BuiltImages;
  switch (profile.image.source) {
    case 'lab':
      built = await buildLabImage(profile, paths.images, log, opts);
      break;
    case 'nix':
      if (opts.force) log.warn('--force has no effect on nix profiles: nix itself rebuilds exactly what changed');
      built = await buildNixImages(profile, paths.images, log, opts.transcript);
      break;
  }
  // Old builds cost a GiB each: keep the new one, the previous one, and any a node disk still sits on.
  if (!built.reused) await pruneBuilds(paths.images, built.id, opts.inUse ?? new Set(), log);
  return built;
}

/** The exact build a node was started from (its disk is an overlay on it). */
export async function imagesById(profile: LoadedProfile, paths: ClusterPaths, id: string): Promise<BuiltImages> {
  switch (profile.image.source) {
    case 'lab':
      return labImageById(profile, paths.images, id);
    case 'nix':
      return nixImageById(paths.images, id);
  }
}
