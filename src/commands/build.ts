import type { Command } from 'commander';
import { imagesInUse } from '../cluster/lifecycle.js';
import { EXIT_OK } from '../core/errors.js';
import { RunRecord } from '../core/run-record.js';
import { seconds } from '../core/time.js';
import { hostFacts } from '../host/facts.js';
import { buildImages } from '../images/build.js';
import type { BuiltImages } from '../images/types.js';
import { action, emit, globals, withProfile } from './context.js';

export function registerBuild(program: Command): void {
  program
    .command('build')
    .description(
      'build the node images of the profile: lab = mmdebstrap (content-hashed cache), nix = ONE `nix build` for every node; evidence under <work-root>/build/<ts>/',
    )
    .option('--force', 'lab: rebuild even when the cache has this recipe')
    .action(
      action(async (opts: { force?: boolean }, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        const rec = await RunRecord.create({ workRoot: ctx.workRoot, lane: 'build', profile: ctx.profile.name, host: hostFacts() });
        let built: BuiltImages;
        try {
          built = await rec.step('build-images', (step) =>
            step.lines('builder.log', async (transcript) => {
              const b = await buildImages(ctx.profile, ctx.paths, step.log, { ...opts, transcript, inUse: await imagesInUse(ctx.paths) });
              await step.json('images.json', b);
              return b;
            }),
          );
        } catch (err) {
          await rec.finish(err);
          throw err; // exit 2 for bad input, 1 for a failed build; the message names the node
        }
        const res = await rec.finish();
        emit(
          ctx,
          { ...built, seconds: (res.durationMs ?? 0) / 1000, dir: rec.dir },
          `${built.reused ? 'reused' : 'built'} image ${built.id} for ${Object.keys(built.nodes).length} node(s) in ${seconds(res.durationMs ?? 0)}; evidence in ${rec.dir}`,
        );
        return EXIT_OK;
      }),
    );
}
