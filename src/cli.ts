import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { registerBudget } from './commands/budget.js';
import { registerBuild } from './commands/build.js';
import { registerCluster } from './commands/cluster.js';
import { registerCompletion } from './commands/completion.js';
import { registerDoctor } from './commands/doctor.js';
import { registerGuards } from './commands/guards.js';
import { registerLanes } from './commands/lanes.js';
import { registerReport } from './commands/report.js';
import { REPO_ROOT } from './config/load-profile.js';
import { EXIT_USAGE } from './core/errors.js';

const version = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const wantsJson = process.argv.includes('--json');

const program = new Command('ultracloud')
  .description('Build, boot and prove an UltraCloud cluster: QEMU guests, lanes, evidence under <work-root>/<lane>/<timestamp>/')
  .option('--profile <name|path>', 'profile name under profiles/ or a path to a profile.json (env ULTRACLOUD_PROFILE; default lab)')
  .option('--work-root <dir>', 'runtime state and proofs (env ULTRACLOUD_WORK_ROOT, then PHOTON_CLUSTER_WORK_ROOT; default ./work)')
  .addOption(new Option('--log-level <level>', 'stderr log level').choices(['trace', 'debug', 'info', 'warn', 'error']).default('info'))
  .option('--json', 'machine-readable output on stdout (logs stay on stderr); an error is {"ok":false,"error":...,"exitCode":...}')
  .version(version, '-V, --version', 'print the version')
  .showHelpAfterError()
  .addHelpText(
    'after',
    `
Examples:
  ultracloud fresh-smoke                     clean, build, boot (or restore a snapshot), run smoke, stop
  ultracloud fresh-smoke --cold-boot --keep  boot for real and leave the cluster up afterwards
  ultracloud smoke --only replicated-state   one step (and what it needs) on the running cluster
  ultracloud smoke --inject unit-masked      a negative control: readiness must fail, naming the unit
  ultracloud lanes                           every lane, its steps and negative controls
  ultracloud status | ssh node01 | logs node02 --journal | stop
  ultracloud report                          the newest run's summary (report.html beside it)

Exit codes: 0 passed, 1 a check failed, 2 bad usage or input (nothing changed), 130/143 interrupted (SIGINT/SIGTERM).
Environment: NO_COLOR / FORCE_COLOR for the stderr log; ULTRACLOUD_PROFILE, ULTRACLOUD_WORK_ROOT; see README.`,
  )
  .exitOverride((err) => {
    // commander's own exits: help/version are success, everything else is bad usage.
    const code = err.exitCode === 0 ? 0 : EXIT_USAGE;
    if (code !== 0 && wantsJson)
      process.stdout.write(`${JSON.stringify({ ok: false, error: err.message.replace(/^error: /, ''), exitCode: code })}\n`);
    process.exit(code);
  });

registerDoctor(program);
registerBudget(program);
registerBuild(program);
registerGuards(program);
registerCluster(program);
registerLanes(program);
registerReport(program);
registerCompletion(program);

await program.parseAsync(process.argv);
