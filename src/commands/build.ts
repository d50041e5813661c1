import type { Command } from 'commander';
import { log } from '../core/log.js';
import { buildImages } from '../images/build.js';
import { action, emit, globals, withProfile } from './context.js';

export function registerBuild(program: Command): void {
  program
    .command('build')
    .description('build (or reuse from the content-hashed cache) the node images of the profile')
    .option('--force', 'rebuild even when the cache has this recipe')
    .action(
      action(async (opts: { force?: boolean }, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        const t0 = Date.now();
        const built = await buildImages(ctx.profile, ctx.paths, log.child({ lane: 'build' }), opts);
        emit(ctx, { ...built, seconds: (Date.now() - t0) / 1000 }, `${built.reused ? 'reused' : 'built'} image ${built.id} for ${Object.keys(built.nodes).length} node(s) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      }),
    );
}
