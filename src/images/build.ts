import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { nodeRecords } from '../cluster/state.js';
import type { ClusterPaths } from '../config/paths.js';
import type { LoadedProfile } from '../config/profile.js';
import { buildLabImage, labImageById } from './lab-image.js';
import { buildNixImages, nixImageById } from './nix-image.js';
import { pruneBuilds } from './prune.js';
import type { BuiltImages } from './types.js';

/** The ImageProvider switch: one place that knows which builder serves a profile. */
export async function buildImages(
  profile: LoadedProfile,
  paths: ClusterPaths,
  log: Logger,
  opts: { force?: boolean /** every line the builder prints (nix's transcript) */; transcript?: (line: string) => void } = {},
): Promise<BuiltImages> {
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
  if (!built.reused) await pruneImages(paths, built.id, log);
  return built;
}

/** Old builds cost a GiB each: keep the new one, the previous one, and any a node disk still sits on. */
async function pruneImages(paths: ClusterPaths, newest: string, log: Logger): Promise<void> {
  const inUse = new Set<string>();
  const stateDirs = (await fs.readdir(path.dirname(paths.state)).catch(() => [] as string[]))
    .filter((d) => d.startsWith('state'))
    .map((d) => path.join(path.dirname(paths.state), d));
  for (const dir of new Set([...stateDirs, paths.state])) for (const r of await nodeRecords(dir)) inUse.add(r.image);
  await pruneBuilds(paths.images, newest, inUse, log);
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
