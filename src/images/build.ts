import type { Logger } from 'pino';
import type { ClusterPaths } from '../config/paths.js';
import type { LoadedProfile } from '../config/profile.js';
import { UsageError } from '../core/errors.js';
import { buildLabImage } from './lab-image.js';
import type { BuiltImages } from './types.js';

/** The ImageProvider switch: one place that knows which builder serves a profile. */
export async function buildImages(profile: LoadedProfile, paths: ClusterPaths, log: Logger, opts: { force?: boolean } = {}): Promise<BuiltImages> {
  switch (profile.image.source) {
    case 'lab':
      return buildLabImage(profile, paths.images, log, opts);
    case 'nix':
      throw new UsageError(`profile ${profile.name}: the nix image provider is not available in this version`);
  }
}
