import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { buildLabInstaller } from '../baremetal/lab-installer.js';
import { FAILURE_MARKERS, INSTALL_SEQUENCE, MARKER_PREFIX, MarkerTracker } from '../baremetal/markers.js';
import { RedfishClient, redfishConfigFromEnv } from '../baremetal/redfish.js';
import { confirmDevice, writeImageToDevice } from '../baremetal/usb.js';
import { loadInstallContract } from '../config/install-contract.js';
import { positiveNumber } from '../core/cli-values.js';
import { CheckFailed, errorMessage, StepSkipped, UsageError } from '../core/errors.js';
import { TextTail } from '../core/follow-file.js';
import { redactCredentials } from '../core/redact.js';
import { seconds } from '../core/time.js';

/** The console copy kept as evidence: its last 10 MiB. */
const CONSOLE_EVIDENCE_BYTES = 10 * 2 ** 20;

import { hostLane, type LaneEnv, type LaneOption, type Step } from './lane.js';

/**
 * hardware-smoke: the same install route as baremetal-iso, on a physical machine.
 * preflight writes the handoff (kernel parameters, markers, what to do) and records "blocked"
 * without a transport; run drives USB or BMC/Redfish; capture checks the markers in a
 * serial-over-LAN or console log.
 */
export type Transport = { kind: 'none' } | { kind: 'usb'; device: string } | { kind: 'redfish'; bmc?: string; isoUrl: string };

export function transportFrom(
  o: { transport?: string; device?: string; bmc?: string; isoUrl?: string },
  env: NodeJS.ProcessEnv = process.env,
): Transport {
  const kind = o.transport ?? env.ULTRACLOUD_HW_TRANSPORT ?? 'none';
  if (kind === 'none') return { kind };
  if (kind === 'usb') {
    const device = o.device ?? env.ULTRACLOUD_HW_USB_DEVICE;
    if (!device) throw new UsageError('usb transport needs --device /dev/sdX (or ULTRACLOUD_HW_USB_DEVICE)');
    return { kind, device };
  }
  if (kind === 'redfish') {
    const isoUrl = o.isoUrl ?? env.ULTRACLOUD_HW_ISO_URL;
    if (!isoUrl)
      throw new UsageError('redfish transport needs --iso-url (or ULTRACLOUD_HW_ISO_URL): where the BMC fetches the installer ISO from');
    return { kind, bmc: o.bmc, isoUrl };
  }
  throw new UsageError(`unknown transport "${kind}" (none, usb, redfish)`);
}

/** The installer's kernel command line, read from the same grub.cfg the ISO boots with. */
export function installerKernelParams(profileDir: string, cmdline: string): string {
  const cfg = readFileSync(path.join(profileDir, 'baremetal/guest/grub.cfg'), 'utf8');
  const line = cfg.split('\n').find((l) => l.includes('ultracloud.installer=1'));
  if (!line) throw new Error('grub.cfg has no installer entry');
  return line
    .trim()
    .replace(/^linux\s+\S+\s+/, '')
    .replace('@CMDLINE@', cmdline)
    .replace(/\s+/g, ' ')
    .trim();
}

const TRANSPORT_OPTIONS: readonly LaneOption[] = [
  {
    flags: '--transport <kind>',
    description: 'how the image reaches the machine (env ULTRACLOUD_HW_TRANSPORT)',
    choices: ['none', 'usb', 'redfish'],
  },
  { flags: '--device <path>', description: 'usb: the whole block device to write (env ULTRACLOUD_HW_USB_DEVICE)' },
  {
    flags: '--bmc <url>',
    description: 'redfish: the BMC base URL (env ULTRACLOUD_REDFISH_URL; credentials only from ULTRACLOUD_REDFISH_USERNAME/PASSWORD)',
  },
  { flags: '--iso-url <url>', description: 'redfish: where the BMC fetches the installer ISO (env ULTRACLOUD_HW_ISO_URL)' },
  {
    flags: '--deployer-url <url>',
    description: 'the deployer the installer phones home to, baked into the kernel parameters (env ULTRACLOUD_DEPLOYER_URL)',
  },
];

interface HardwareCtx extends LaneEnv {
  transport: Transport;
  deployerUrl?: string;
  iso?: string;
  params?: string;
}

const hardwareContext = (env: LaneEnv & { prepared: unknown }): HardwareCtx => ({
  ...env,
  transport: env.prepared as Transport,
  deployerUrl: (env.options.deployerUrl as string | undefined) ?? process.env.ULTRACLOUD_DEPLOYER_URL,
});

const cmdline = (ctx: HardwareCtx) => (ctx.deployerUrl ? `ultracloud.deployer=${ctx.deployerUrl}` : '');

const installerImage: Step<HardwareCtx> = {
  name: 'installer-image',
  proves: 'the installer image exists: the lab ISO (built or cached), or the canonical nix output it names',
  run: async (ctx, step) => {
    const { profile } = ctx;
    if (profile.image.source === 'nix') {
      ctx.iso = `nix build ${profile.image.flake}#packages.x86_64-linux.ultracloud-iso (nixosConfigurations.ultracloud-iso)`;
      return `canonical installer: ${ctx.iso}`;
    }
    const m = await buildLabInstaller(profile.dir, ctx.paths.images, step.log, { cmdline: cmdline(ctx) });
    ctx.iso = m.iso;
    await step.json('installer.json', m);
    return `lab installer ${m.iso}`;
  },
};

const handoffStep: Step<HardwareCtx> = {
  name: 'handoff',
  proves: 'the operator handoff is written: kernel parameters, expected and failure markers, what to do',
  run: async (ctx, step) => {
    const { contract } = loadInstallContract(ctx.profile.dir);
    ctx.params = installerKernelParams(ctx.profile.dir, cmdline(ctx) || 'ultracloud.deployer=http://<deployer-host>:<port>');
    await step.evidence('kernel-params.txt', `${ctx.params}\n`);
    await step.evidence('expected-markers.txt', `${INSTALL_SEQUENCE.map((m) => `${MARKER_PREFIX} ${m}`).join('\n')}\n`);
    await step.evidence(
      'failure-markers.txt',
      `${MARKER_PREFIX} FAIL <stage> <reason>\n${MARKER_PREFIX} desired-system-rolled-back <detail>\n`,
    );
    await step.evidence('handoff.md', handoff(ctx, contract.classes));
    return `kernel parameters, ${INSTALL_SEQUENCE.length} expected markers, ${FAILURE_MARKERS.length} failure markers, operator handoff`;
  },
};

const transportBlocked: Step<HardwareCtx> = {
  name: 'transport',
  proves: 'a transport is configured; without one the run records "blocked: no transport" (not a failure)',
  run: async (ctx, step) => {
    const t = ctx.transport;
    await step.json(
      'transport.json',
      t.kind === 'none' ? { state: 'blocked', reason: 'no transport' } : { state: 'configured', ...redacted(t) },
    );
    if (t.kind === 'none') {
      ctx.rec.event('info', 'blocked: no transport', { hint: 'set --transport usb|redfish (or ULTRACLOUD_HW_TRANSPORT) to run' });
      return 'blocked: no transport (handoff written; run with --transport usb|redfish when one is available)';
    }
    return `transport ${t.kind} configured; next: ultracloud hardware-smoke run`;
  },
};

const transportRun: Step<HardwareCtx> = {
  name: 'transport',
  proves:
    'the installer reaches the machine: written to the confirmed USB device, or inserted as BMC virtual media with a one-time CD boot and power on',
  run: async (ctx, step) => {
    const t = ctx.transport;
    if (t.kind === 'usb') {
      if (!ctx.iso || !existsSync(ctx.iso)) throw new UsageError(`no installer image file to write (${ctx.iso}); build it first`);
      const r = await writeImageToDevice(ctx.iso, t.device, { log: step.log });
      await step.json('transport.json', { kind: 'usb', ...r });
      return `wrote ${(r.bytes / 2 ** 20).toFixed(0)} MiB to ${r.device}; boot the machine from it`;
    }
    if (t.kind === 'redfish') {
      const client = new RedfishClient(redfishConfigFromEnv(process.env, t.bmc), step.log);
      try {
        const r = await client.bootFromVirtualMedia(t.isoUrl);
        return `redfish: ${redactCredentials(t.isoUrl)} inserted at ${r.slot}, one-time boot from CD, ${r.reset} on ${r.system}`;
      } finally {
        await step.json('redfish-calls.json', client.calls);
      }
    }
    throw new Error('run without a transport (prepare refuses this before starting)');
  },
};

function redacted(t: Transport): Record<string, unknown> {
  return t.kind === 'redfish' ? { ...t, bmc: t.bmc && redactCredentials(t.bmc), isoUrl: redactCredentials(t.isoUrl) } : { ...t };
}

function markersStep(log: string, follow: boolean, timeoutMs: number): Step<HardwareCtx> {
  return {
    name: 'markers',
    proves: 'every install marker appears in the console log, in order, with no failure marker',
    run: async (_ctx, step) => {
      if (!existsSync(log) && !follow) throw new UsageError(`no such log file: ${log}`);
      const tail = new TextTail(CONSOLE_EVIDENCE_BYTES);
      const tracker = new MarkerTracker('machine', log, {
        deadline: follow ? Date.now() + timeoutMs : 0,
        alive: async () => true,
        transcript: (t) => tail.push(t),
      });
      try {
        for (const m of INSTALL_SEQUENCE) await tracker.waitFor(m);
        return `all ${INSTALL_SEQUENCE.length} markers in order in ${log}: ${tracker.seen.map((s) => s.name).join(' -> ')}`;
      } catch (err) {
        const next = INSTALL_SEQUENCE.find((m) => !tracker.seen.some((s) => s.name === m));
        throw new CheckFailed(
          `${errorMessage(err).replace('the deadline passed', follow ? `no ${next} within ${seconds(timeoutMs)}` : `the log ends before ${next}`)}`,
        );
      } finally {
        await tracker.stop();
        await step.json('markers.json', tracker.seen);
        // What was read, bounded: every marker is in markers.json, the tail here (a 5 GiB log must not fill the disk).
        const dropped = tail.dropped
          ? `[ultracloud: the first ${tail.dropped} bytes of ${log} are not kept; every marker is in markers.json]\n`
          : '';
        await step.evidence('console.log', Buffer.concat([Buffer.from(dropped), tail.toBuffer()]));
      }
    },
  };
}

/** The console log `run --console-log` follows after the transport step (a step built from the options). */
const followConsole: Step<HardwareCtx> = {
  name: 'markers',
  proves: 'with --console-log: every install marker appears in that log, in order, within --timeout',
  run: async (ctx, step) => {
    const file = ctx.options.consoleLog as string | undefined;
    if (!file) throw new StepSkipped('no --console-log given: check the markers later with hardware-smoke capture --log <file>');
    return markersStep(file, true, (ctx.options.timeout as number) * 1000).run(ctx, step);
  },
};

export const hardwarePreflight = hostLane<HardwareCtx>()({
  name: 'hardware-smoke',
  command: ['hardware-smoke', 'preflight'],
  description: 'write the kernel parameters, expected and failure markers and the operator handoff; "blocked" without a transport',
  kind: 'host',
  options: TRANSPORT_OPTIONS,
  prepare: async (env) => transportFrom(env.options),
  context: hardwareContext,
  steps: [installerImage, handoffStep, transportBlocked],
  controls: {},
  report: (ctx, passed) => {
    const blocked = passed && ctx.transport.kind === 'none';
    return {
      text: `hardware-smoke preflight: ${blocked ? 'handoff written; blocked: no transport' : passed ? 'PASSED' : 'FAILED'}; evidence in ${ctx.rec.dir}`,
      data: { transport: ctx.transport.kind, blocked },
    };
  },
});

export const hardwareRun = hostLane<HardwareCtx>()({
  name: 'hardware-smoke',
  command: ['hardware-smoke', 'run'],
  description:
    'preflight, then put the installer on the machine through the transport (USB write with confirmation, or Redfish virtual media + one-time boot + power on)',
  kind: 'host',
  options: [
    ...TRANSPORT_OPTIONS,
    { flags: '--yes', description: 'usb: do not ask before overwriting the device' },
    { flags: '--console-log <file>', description: 'afterwards, follow this serial-over-LAN/console log for the markers' },
    { flags: '--timeout <seconds>', description: 'how long to follow --console-log', parse: positiveNumber, default: 1800 },
  ],
  // Bad input changes nothing: the device is checked and confirmed before any build or record.
  prepare: async (env) => {
    const t = transportFrom(env.options);
    if (t.kind === 'none')
      throw new UsageError(
        "run needs a transport: --transport usb --device /dev/sdX, or --transport redfish --iso-url URL (see preflight's handoff.md)",
      );
    if (t.kind === 'usb') t.device = await confirmDevice(t.device, env.options.yes === true);
    if (t.kind === 'redfish') redfishConfigFromEnv(process.env, t.bmc);
    return t;
  },
  context: hardwareContext,
  steps: [installerImage, handoffStep, transportRun, followConsole],
  controls: {},
});

export const hardwareCapture = hostLane<HardwareCtx>()({
  name: 'hardware-smoke',
  command: ['hardware-smoke', 'capture'],
  description: 'check the install markers, in order, in a serial-over-LAN or console log file',
  kind: 'host',
  options: [
    { flags: '--log <file>', description: 'the console log (required)' },
    { flags: '--follow', description: 'keep reading the file until every marker arrived (or --timeout)' },
    { flags: '--timeout <seconds>', description: 'with --follow', parse: positiveNumber, default: 1800 },
  ],
  prepare: async (env) => {
    if (typeof env.options.log !== 'string') throw new UsageError('capture needs --log <file>');
    return { kind: 'none' } satisfies Transport;
  },
  context: hardwareContext,
  steps: [
    {
      name: 'markers',
      proves: 'every install marker appears in the console log, in order, with no failure marker',
      run: (ctx, step) =>
        markersStep(ctx.options.log as string, ctx.options.follow === true, (ctx.options.timeout as number) * 1000).run(ctx, step),
    },
  ],
  controls: {},
});

function handoff(ctx: HardwareCtx, classes: Record<string, { install_plan: { profile: string; disk: string } }>): string {
  const disks = Object.entries(classes)
    .map(([k, c]) => `- class \`${k}\`: installs \`${c.install_plan.profile}\` onto \`${c.install_plan.disk}\``)
    .join('\n');
  return `# Hardware handoff

Installer image: \`${ctx.iso}\`

Kernel parameters (already in the ISO's menu${ctx.deployerUrl ? '' : '; no deployer URL was given: press `e` at the GRUB menu and set ultracloud.deployer, or rerun preflight with --deployer-url'}):

    ${ctx.params}

## Get the image onto the machine

- USB: \`ultracloud hardware-smoke run --transport usb --device /dev/sdX\` (asks you to type the device; \`--yes\` in scripts), then boot the machine from it.
- BMC virtual media: serve the ISO over HTTP(S) where the BMC can fetch it, then
  \`ULTRACLOUD_REDFISH_URL=https://bmc ULTRACLOUD_REDFISH_USERNAME=... ULTRACLOUD_REDFISH_PASSWORD=... ultracloud hardware-smoke run --transport redfish --iso-url <url>\`
  (inserts the media, sets a one-time boot override to CD, powers on or force-restarts; \`ULTRACLOUD_REDFISH_INSECURE=1\` for a self-signed BMC certificate).

## Before you boot

- The machine must be pre-registered with the deployer (its SMBIOS system serial is its \`machine_id\`), with a class whose plan names a disk it really has:
${disks}
- Use stable selectors: the install never falls back to /dev/sdX order.

## What to watch

Serial console at 115200 on the first UART (or serial-over-LAN). The installer and the installed system print, in order:

${INSTALL_SEQUENCE.map((m) => `    ${MARKER_PREFIX} ${m}`).join('\n')}

A line \`${MARKER_PREFIX} FAIL <stage> <reason>\` means the installer stopped at that stage (it halts, like emergency mode);
\`${MARKER_PREFIX} desired-system-rolled-back\` means the desired system failed its health check and the agent rolled back.
Save the console to a file and check it: \`ultracloud hardware-smoke capture --log <file> [--follow]\`.
`;
}
