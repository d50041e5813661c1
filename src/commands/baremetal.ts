import { type Command, Option } from 'commander';
import { chassisRoot, stopAllChassis } from '../baremetal/chassis.js';
import { redfishConfigFromEnv } from '../baremetal/redfish.js';
import { confirmDevice } from '../baremetal/usb.js';
import { EXIT_CHECK_FAILED, EXIT_OK, UsageError } from '../core/errors.js';
import { StateLock } from '../core/lock.js';
import { log } from '../core/log.js';
import { RunRecord } from '../core/run-record.js';
import { onCleanup } from '../core/shutdown.js';
import { hostFacts } from '../host/facts.js';
import { BAREMETAL_INJECTIONS, parseInjections, runBaremetalIso } from '../lanes/baremetal-iso.js';
import { runHardwareCapture, runHardwarePreflight, runHardwareRun, transportFrom } from '../lanes/hardware-smoke.js';
import { accelVerdict, chooseAccel } from '../vm/accel-probe.js';
import { accelOption, positiveNumber } from './cluster.js';
import { action, emit, globals, withProfile } from './context.js';

export function registerBaremetal(program: Command): void {
  program
    .command('baremetal-iso')
    .description(
      'the bare-metal install proof: installer ISO -> phone-home -> install plan -> by-id disk -> reboot -> desired system, for one control-plane and one worker machine (QEMU chassis); evidence under <work-root>/baremetal-iso/<ts>/',
    )
    .addOption(accelOption())
    .addOption(
      new Option(
        '--inject <name...>',
        `negative control (${Object.entries(BAREMETAL_INJECTIONS)
          .map(([k, v]) => `${k}: ${v}`)
          .join('; ')})`,
      ).choices(Object.keys(BAREMETAL_INJECTIONS)),
    )
    .option('--timeout <seconds>', 'for the whole install and convergence of both machines', positiveNumber, 900)
    .action(
      action(async (opts: { accel: 'auto' | 'kvm' | 'tcg'; inject?: string[]; timeout: number }, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        const injections = parseInjections(opts.inject);
        const root = chassisRoot(ctx.workRoot);
        const lock = await StateLock.acquire(root, 'baremetal-iso');
        onCleanup('release chassis lock', () => lock.release());
        const stale = await stopAllChassis(root);
        if (stale.length) log.warn(`stopped chassis left by an earlier run: ${stale.join(', ')}`);
        onCleanup('stop chassis', async () => void (await stopAllChassis(root)));
        const accel = await chooseAccel(opts.accel, (m) => log.warn(m));
        const verdict = await accelVerdict();
        const rec = await RunRecord.create({
          workRoot: ctx.workRoot,
          lane: 'baremetal-iso',
          profile: ctx.profile.name,
          host: hostFacts(verdict.chosen),
        });
        const res = await runBaremetalIso(rec, {
          profileDir: ctx.profile.dir,
          workRoot: ctx.workRoot,
          imagesDir: ctx.paths.images,
          accel,
          timeoutMs: opts.timeout * 1000,
          injections,
        });
        emit(ctx, { ...res, dir: rec.dir }, `baremetal-iso: ${res.success ? 'PASSED' : 'FAILED'}; evidence in ${rec.dir}`);
        return res.success ? EXIT_OK : EXIT_CHECK_FAILED;
      }),
    );

  const hw = program
    .command('hardware-smoke')
    .description(
      'the same install route on a physical machine: preflight (handoff, "blocked" without a transport), run (USB or BMC/Redfish), capture (markers from a console log); evidence under <work-root>/hardware-smoke/<ts>/',
    );
  const transportOptions = (c: Command) =>
    c
      .addOption(
        new Option('--transport <kind>', 'how the image reaches the machine (env ULTRACLOUD_HW_TRANSPORT)').choices([
          'none',
          'usb',
          'redfish',
        ]),
      )
      .option('--device <path>', 'usb: the whole block device to write (env ULTRACLOUD_HW_USB_DEVICE)')
      .option(
        '--bmc <url>',
        'redfish: the BMC base URL (env ULTRACLOUD_REDFISH_URL; credentials only from ULTRACLOUD_REDFISH_USERNAME/PASSWORD)',
      )
      .option('--iso-url <url>', 'redfish: where the BMC fetches the installer ISO (env ULTRACLOUD_HW_ISO_URL)')
      .option(
        '--deployer-url <url>',
        'the deployer the installer phones home to, baked into the kernel parameters (env ULTRACLOUD_DEPLOYER_URL)',
      );
  type HwOpts = {
    transport?: string;
    device?: string;
    bmc?: string;
    isoUrl?: string;
    deployerUrl?: string;
    yes?: boolean;
    consoleLog?: string;
    timeout?: number;
  };
  const hwRun = (kind: 'preflight' | 'run') =>
    action(async (opts: HwOpts, cmd: Command) => {
      const ctx = withProfile(globals(cmd));
      const transport = transportFrom(opts);
      // Bad input changes nothing: the device is checked and confirmed before any build or record.
      if (kind === 'run' && transport.kind === 'usb') transport.device = await confirmDevice(transport.device, opts.yes === true);
      if (kind === 'run' && transport.kind === 'redfish') redfishConfigFromEnv(process.env, transport.bmc);
      if (kind === 'run' && transport.kind === 'none')
        throw new UsageError(
          "run needs a transport: --transport usb --device /dev/sdX, or --transport redfish --iso-url URL (see preflight's handoff.md)",
        );
      const rec = await RunRecord.create({ workRoot: ctx.workRoot, lane: 'hardware-smoke', profile: ctx.profile.name, host: hostFacts() });
      const o = {
        profile: ctx.profile,
        imagesDir: ctx.paths.images,
        deployerUrl: opts.deployerUrl ?? process.env.ULTRACLOUD_DEPLOYER_URL,
        transport,
        consoleLog: opts.consoleLog,
        timeoutMs: (opts.timeout ?? 1800) * 1000,
      };
      const res = kind === 'preflight' ? await runHardwarePreflight(rec, o) : await runHardwareRun(rec, o);
      const blocked = res.success && transport.kind === 'none' && kind === 'preflight';
      const verdict = blocked ? 'handoff written; blocked: no transport' : res.success ? 'PASSED' : 'FAILED';
      emit(ctx, { ...res, dir: rec.dir, transport: transport.kind, blocked }, `hardware-smoke ${kind}: ${verdict}; evidence in ${rec.dir}`);
      return res.success ? EXIT_OK : EXIT_CHECK_FAILED;
    });
  transportOptions(
    hw
      .command('preflight')
      .description(
        'write the kernel parameters, expected and failure markers and the operator handoff; "blocked: no transport" when none is configured',
      ),
  ).action(hwRun('preflight'));
  transportOptions(
    hw
      .command('run')
      .description(
        'preflight, then put the installer on the machine through the transport (USB write with confirmation, or Redfish virtual media + one-time boot + power on)',
      ),
  )
    .option('--yes', 'usb: do not ask before overwriting the device')
    .option('--console-log <file>', 'afterwards, follow this serial-over-LAN/console log for the markers')
    .option('--timeout <seconds>', 'how long to follow --console-log', positiveNumber, 1800)
    .action(hwRun('run'));
  hw.command('capture')
    .description('check the install markers, in order, in a serial-over-LAN or console log file')
    .requiredOption('--log <file>', 'the console log')
    .option('--follow', 'keep reading the file until every marker arrived (or --timeout)')
    .option('--timeout <seconds>', 'with --follow', positiveNumber, 1800)
    .action(
      action(async (opts: { log: string; follow?: boolean; timeout: number }, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        const rec = await RunRecord.create({
          workRoot: ctx.workRoot,
          lane: 'hardware-smoke',
          profile: ctx.profile.name,
          host: hostFacts(),
        });
        const res = await runHardwareCapture(rec, { log: opts.log, follow: opts.follow === true, timeoutMs: opts.timeout * 1000 });
        emit(ctx, { ...res, dir: rec.dir }, `hardware-smoke capture: ${res.success ? 'PASSED' : 'FAILED'}; evidence in ${rec.dir}`);
        return res.success ? EXIT_OK : EXIT_CHECK_FAILED;
      }),
    );
}
