import { Argument, type Command } from 'commander';
import { REPO_ROOT } from '../config/load-profile.js';
import { EXIT_OK } from '../core/errors.js';
import { RunRecord } from '../core/run-record.js';
import { hostFacts } from '../host/facts.js';
import { buildGuards, evalGuards, type GuardOutput, guardNixDirs, nixFilesUnder, parseCheck } from '../images/nix-guards.js';
import { action, emit, globals, withProfile } from './context.js';

export function registerGuards(program: Command): void {
  program
    .command('guards')
    .description(
      'canonical-profile guards for nix profiles: every .nix file under nix/ parses; eval = every canonical output has a drvPath; build = they all realise (one nix build); evidence under <work-root>/guards/<ts>/',
    )
    .addArgument(new Argument('<kind>', 'eval or build').choices(['eval', 'build']))
    .action(
      action(async (kind: 'eval' | 'build', _o: object, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        const dirs = guardNixDirs(ctx.profile, REPO_ROOT); // refuses a non-nix profile before any record is made
        const rec = await RunRecord.create({ workRoot: ctx.workRoot, lane: 'guards', profile: ctx.profile.name, host: hostFacts() });
        let outputs: Record<string, GuardOutput> = {};
        try {
          await rec.step('nix-parse', async (step) => {
            const files = await nixFilesUnder(dirs);
            await parseCheck(files);
            await step.evidence('parsed-files.txt', `${files.join('\n')}\n`);
            return `${files.length} .nix file(s) parse (${dirs.join(', ')})`;
          });
          outputs = await rec.step('eval-guards', async (step) => {
            const o = await evalGuards(ctx.profile, step.log);
            await step.evidence('drv-paths.json', `${JSON.stringify(o, null, 2)}\n`);
            return o;
          });
          if (kind === 'build')
            outputs = await rec.step('build-guards', (step) =>
              step.lines('builder.log', async (transcript) => {
                const o = await buildGuards(ctx.profile, outputs, step.log, transcript);
                await step.evidence('outputs.json', `${JSON.stringify(o, null, 2)}\n`);
                return o;
              }),
            );
        } catch (err) {
          await rec.finish(err);
          throw err;
        }
        await rec.finish();
        const lines = Object.entries(outputs).map(
          ([label, g]) => `${g.attribute}  ${kind === 'build' ? g.out : g.drvPath}${label !== g.attribute ? `  (${label})` : ''}`,
        );
        emit(
          ctx,
          { kind, outputs, dir: rec.dir },
          [...lines, `guards ${kind}: ${lines.length} output(s) ok; evidence in ${rec.dir}`].join('\n'),
        );
        return EXIT_OK;
      }),
    );
}
