import { existsSync, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { buildLabInstaller } from '../baremetal/lab-installer.js';
import { FAILURE_MARKERS, INSTALL_SEQUENCE, MARKER_PREFIX, MarkerTracker } from '../baremetal/markers.js';
import { RedfishClient, redfishConfigFromEnv } from '../baremetal/redfish.js';
import { writeImageToDevice } from '../baremetal/usb.js';
import { loadInstallContract } from '../config/install-contract.js';
import type { LoadedProfile } from '../config/profile.js';
import { CheckFailed, errorMessage, UsageError } from '../core/errors.js';
import type { RunRecord, StepContext } from '../core/run-record.js';
import { seconds } from '../core/time.js';
import { type LaneStep, runSteps } from './lane.js';

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

export interface HardwareOptions {
  profile: LoadedProfile;
  imagesDir: string;
  deployerUrl?: string;
  /** usb: already confirmed by confirmDevice before the run started. */
  transport: Transport;
  /** run: follow this console/SOL log for the markers afterwards. */
  consoleLog?: string;
  timeoutMs: number;
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

function preflightSteps(o: HardwareOptions, state: { iso?: string; params?: string }): LaneStep[] {
  const { profile } = o;
  const cmdline = o.deployerUrl ? `ultracloud.deployer=${o.deployerUrl}` : '';
  return [
    {
      name: 'installer-image',
      run: async (step) => {
        if (profile.image.source === 'nix') {
          state.iso = `nix build ${profile.image.flake}#packages.x86_64-linux.ultracloud-iso (nixosConfigurations.ultracloud-iso)`;
          return `canonical installer: ${state.iso}`;
        }
        const m = await buildLabInstaller(profile.dir, o.imagesDir, step.log, { cmdline });
        state.iso = m.iso;
        await step.evidence('installer.json', json(m));
        return `lab installer ${m.iso}`;
      },
    },
    {
      name: 'handoff',
      run: async (step) => {
        const { contract } = loadInstallContract(profile.dir);
        state.params = installerKernelParams(profile.dir, cmdline || 'ultracloud.deployer=http://<deployer-host>:<port>');
        await step.evidence('kernel-params.txt', `${state.params}\n`);
        await step.evidence('expected-markers.txt', `${INSTALL_SEQUENCE.map((m) => `${MARKER_PREFIX} ${m}`).join('\n')}\n`);
        await step.evidence(
          'failure-markers.txt',
          `${MARKER_PREFIX} FAIL <stage> <reason>\n${MARKER_PREFIX} desired-system-rolled-back <detail>\n`,
        );
        await step.evidence('handoff.md', handoff(o, state, contract.classes));
        return `kernel parameters, ${INSTALL_SEQUENCE.length} expected markers, ${FAILURE_MARKERS.length} failure markers, operator handoff`;
      },
    },
  ];
}

function handoff(
  o: HardwareOptions,
  state: { iso?: string; params?: string },
  classes: Record<string, { install_plan: { profile: string; disk: string } }>,
): string {
  const disks = Object.entries(classes)
    .map(([k, c]) => `- class \`${k}\`: installs \`${c.install_plan.profile}\` onto \`${c.install_plan.disk}\``)
    .join('\n');
  return `# Hardware handoff

Installer image: \`${state.iso}\`

Kernel parameters (already in the ISO's menu${o.deployerUrl ? '' : '; no deployer URL was given: press `e` at the GRUB menu and set ultracloud.deployer, or rerun preflight with --deployer-url'}):

    ${state.params}

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

export async function runHardwarePreflight(rec: RunRecord, o: HardwareOptions) {
  const state: { iso?: string; params?: string } = {};
  return runSteps(rec, [
    ...preflightSteps(o, state),
    {
      name: 'transport',
      run: async (step) => {
        await step.evidence(
          'transport.json',
          json(o.transport.kind === 'none' ? { state: 'blocked', reason: 'no transport' } : { state: 'configured', ...o.transport }),
        );
        if (o.transport.kind === 'none') {
          rec.event('info', 'blocked: no transport', { hint: 'set --transport usb|redfish (or ULTRACLOUD_HW_TRANSPORT) to run' });
          return 'blocked: no transport (handoff written; run with --transport usb|redfish when one is available)';
        }
        return `transport ${o.transport.kind} configured; next: ultracloud hardware-smoke run`;
      },
    },
  ]);
}

export async function runHardwareRun(rec: RunRecord, o: HardwareOptions) {
  const state: { iso?: string; params?: string } = {};
  const steps = preflightSteps(o, state);
  steps.push({
    name: 'transport',
    run: async (step) => {
      const t = o.transport;
      if (t.kind === 'usb') {
        if (!state.iso || !existsSync(state.iso)) throw new UsageError(`no installer image file to write (${state.iso}); build it first`);
        const r = await writeImageToDevice(state.iso, t.device, { log: step.log });
        await step.evidence('transport.json', json({ kind: 'usb', ...r }));
        return `wrote ${(r.bytes / 2 ** 20).toFixed(0)} MiB to ${r.device}; boot the machine from it`;
      }
      if (t.kind === 'redfish') {
        const client = new RedfishClient(redfishConfigFromEnv(process.env, t.bmc), step.log);
        try {
          const r = await client.bootFromVirtualMedia(t.isoUrl);
          return `redfish: ${t.isoUrl} inserted at ${r.slot}, one-time boot from CD, ${r.reset} on ${r.system}`;
        } finally {
          await step.evidence('redfish-calls.json', json(client.calls));
        }
      }
      throw new Error('run without a transport (the command refuses this before starting)');
    },
  });
  if (o.consoleLog) steps.push(captureStep(o.consoleLog, true, o.timeoutMs));
  return runSteps(rec, steps);
}

function captureStep(log: string, follow: boolean, timeoutMs: number): LaneStep {
  return {
    name: 'markers',
    run: async (step: StepContext) => {
      if (!existsSync(log) && !follow) throw new UsageError(`no such log file: ${log}`);
      const tracker = new MarkerTracker('machine', log, { deadline: follow ? Date.now() + timeoutMs : 0, alive: async () => true });
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
        await step.evidence('markers.json', json(tracker.seen));
        await fs.copyFile(log, step.evidencePath('console.log')).catch(() => undefined);
      }
    },
  };
}

export async function runHardwareCapture(rec: RunRecord, o: { log: string; follow: boolean; timeoutMs: number }) {
  return runSteps(rec, [captureStep(o.log, o.follow, o.timeoutMs)]);
}
