import { Command, Option } from 'commander';
import { registerBudget } from './commands/budget.js';
import { registerBuild } from './commands/build.js';
import { registerCluster } from './commands/cluster.js';
import { registerDoctor } from './commands/doctor.js';
import { registerGuards } from './commands/guards.js';
import { registerLanes } from './commands/lanes.js';
import { EXIT_USAGE } from './core/errors.js';

const program = new Command('ultracloud')
  .description('Build, boot and prove an UltraCloud cluster: QEMU guests, lanes, evidence under <work-root>/<lane>/<timestamp>/')
  .option('--profile <name|path>', 'profile name under profiles/ or a path to a profile.json (env ULTRACLOUD_PROFILE; default lab)')
  .option('--work-root <dir>', 'runtime state and proofs (env ULTRACLOUD_WORK_ROOT, then PHOTON_CLUSTER_WORK_ROOT; default ./work)')
  .addOption(new Option('--log-level <level>', 'stderr log level').choices(['trace', 'debug', 'info', 'warn', 'error']).default('info'))
  .option('--json', 'machine-readable output on stdout (logs stay on stderr)')
  .showHelpAfterError()
  .exitOverride((err) => {
    // commander's own exits: help/version are success, everything else is bad usage.
    process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  });

registerDoctor(program);
registerBudget(program);
registerBuild(program);
registerGuards(program);
registerCluster(program);
registerLanes(program);

await program.parseAsync(process.argv);
