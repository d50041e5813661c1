import type { Command } from 'commander';
import { EXIT_CHECK_FAILED, EXIT_OK } from '../core/errors.js';
import { log } from '../core/log.js';
import { installPackages, renderDoctor, runDoctor } from '../doctor/doctor.js';
import { forgetTools } from '../host/tools.js';
import { action, emit, globals, withProfile } from './context.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check the host: tools (and their Debian packages), nix, disk, memory, and a real KVM/TCG boot probe')
    .option('--fix', 'install missing Debian packages with apt-get (root only)')
    .option('--refresh', "probe the accelerators again instead of using this boot's cached verdict")
    .action(
      action(async (opts: { fix?: boolean; refresh?: boolean }, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        const run = () => runDoctor({ workRoot: ctx.workRoot, imageSource: ctx.profile.image.source, refreshProbe: opts.refresh });
        let report = await run();
        if (opts.fix && report.missingPackages.length > 0) {
          log.info(`installing: ${report.missingPackages.join(' ')}`);
          await installPackages(report.missingPackages);
          forgetTools();
          report = await run();
        }
        emit(ctx, { profile: ctx.profile.name, ...report }, renderDoctor(report));
        return report.ok ? EXIT_OK : EXIT_CHECK_FAILED;
      }),
    );
}
