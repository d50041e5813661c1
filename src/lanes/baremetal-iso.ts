import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { chassisPid, chassisRoot, launchChassis, saveChassisEvidence, stopChassis } from '../baremetal/chassis.js';
import { buildLabInstaller, type InstallerManifest } from '../baremetal/lab-installer.js';
import { type InstallMarker, MarkerTracker } from '../baremetal/markers.js';
import { consoleTail } from '../cluster/console.js';
import { type InstallContract, loadInstallContract, type NodeRegistration } from '../config/install-contract.js';
import { CheckFailed, errorMessage, UsageError } from '../core/errors.js';
import type { RunRecord, StepContext } from '../core/run-record.js';
import { onCleanup } from '../core/shutdown.js';
import { seconds } from '../core/time.js';
import { Deployer } from '../deployer/server.js';
import { DeployerStore } from '../deployer/store.js';
import { eventually } from '../probes/eventually.js';
import { type LaneStep, runSteps } from './lane.js';

export const BAREMETAL_STEPS = ['installer-image', 'deployer', 'install', 'first-boot', 'desired-system'] as const;

/** Negative controls: each changes the contract the way an operator mistake would. */
export const BAREMETAL_INJECTIONS = {
  'bad-disk-id': 'the control-plane class plan names a disk id no machine has (install must fail at "disk selected")',
  'unhealthy-system':
    "the worker's desired system never passes its health check (the agent must roll back; desired-system fails saying so)",
} as const;
export type BaremetalInjection = keyof typeof BAREMETAL_INJECTIONS;

export function injectContract(c: InstallContract, names: BaremetalInjection[]): InstallContract {
  const out: InstallContract = structuredClone(c);
  for (const n of names) {
    if (n === 'bad-disk-id') {
      const k = out.classes['control-plane'] ?? Object.values(out.classes)[0]!;
      k.install_plan.disk = '/dev/disk/by-id/virtio-uc-missing-root';
    } else if (n === 'unhealthy-system') {
      const node = out.nodes.find((x) => x.class === 'worker') ?? out.nodes.at(-1)!;
      node.desired_system = {
        target_system: 'broken-health-v1',
        health_check: node.desired_system?.health_check ?? 'false',
        health_timeout_s: 10,
      };
    }
  }
  return out;
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

export interface BaremetalOptions {
  profileDir: string;
  workRoot: string;
  imagesDir: string;
  accel: 'kvm' | 'tcg';
  timeoutMs: number;
  injections: BaremetalInjection[];
}

/**
 * `baremetal-iso`: the installer ISO boots on a QEMU chassis per node, phones home to the
 * deployer, installs onto the plan's by-id disk, reboots into the installed system, whose agent
 * converges to the desired system. Markers are checked in order, per machine.
 */
export async function runBaremetalIso(rec: RunRecord, o: BaremetalOptions) {
  const { contract: base, file: contractFile } = loadInstallContract(o.profileDir);
  const contract = injectContract(base, o.injections);
  for (const i of o.injections) rec.event('fault', `inject ${i}`, { what: BAREMETAL_INJECTIONS[i] });
  const root = chassisRoot(o.workRoot);
  const deadline = Date.now() + o.timeoutMs;
  let installer: InstallerManifest | undefined;
  let deployer: Deployer | undefined;
  const trackers = new Map<string, MarkerTracker>();
  const keepEvidence = onCleanup('save chassis consoles', () =>
    saveChassisEvidence(
      root,
      contract.nodes.map((n) => n.id),
      rec.dir,
    ),
  );

  const startDeployer = async (log: Logger, port = 0) => {
    const d = new Deployer({
      contract,
      store: new DeployerStore(path.join(rec.dir, 'deployer', 'state.json')),
      artifacts: path.dirname(installer!.iso),
      publicUrl: (p) => `http://10.0.2.2:${p}`, // QEMU user networking: the host's loopback as seen from a guest
      log,
    });
    await d.listen(port);
    return d;
  };
  const admin = async (method: string, route: string, body?: unknown) => {
    const r = await fetch(`http://127.0.0.1:${deployer!.port}${route}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = (await r.json()) as Record<string, unknown>;
    if (!r.ok) throw new CheckFailed(`deployer ${method} ${route} -> ${r.status}: ${String(data.error)}`);
    return data;
  };
  /** Every machine reaches `marker`; the first that cannot fails the step with its last marker and console. */
  const waitAll = async (marker: InstallMarker, step: StepContext) => {
    const wait = async (id: string) => {
      try {
        return [id, await trackers.get(id)!.waitFor(marker)] as const;
      } catch (err) {
        const consoleFile = path.join(root, id, 'console.log');
        throw new CheckFailed(`${errorMessage(err)}\n--- console tail (${consoleFile}) ---\n${await consoleTail(consoleFile, 30)}`);
      }
    };
    const seen = await Promise.all(contract.nodes.map((n) => wait(n.id)));
    await step.evidence('markers.json', json(Object.fromEntries([...trackers].map(([id, t]) => [id, t.seen]))));
    return seen.map(([id, m]) => `${id} ${seconds(m.ms)}`).join(', ');
  };

  const steps: LaneStep[] = [
    {
      name: 'installer-image',
      run: async (step) => {
        installer = await buildLabInstaller(o.profileDir, o.imagesDir, step.log);
        await step.evidence('installer.json', json(installer));
        return `${installer.id}: ${path.basename(installer.iso)}, bundles ${Object.keys(installer.bundles).join(', ')}`;
      },
    },
    {
      name: 'deployer',
      run: async (step) => {
        deployer = await startDeployer(step.log);
        const first = await Promise.all(contract.nodes.map((n) => admin('POST', '/api/v1/admin/nodes', n)));
        const again = await Promise.all(contract.nodes.map((n) => admin('POST', '/api/v1/admin/nodes', n)));
        if (again.some((r) => r.result !== 'unchanged'))
          throw new CheckFailed(`re-registering the same nodes changed them: ${JSON.stringify(again)}`);
        // Durable across its own restart: same store, same port, the registrations are still there.
        const port = deployer.port;
        await deployer.close();
        deployer = await startDeployer(step.log, port);
        const listed = (await admin('GET', '/api/v1/admin/nodes')).nodes as Record<string, { registration: NodeRegistration }>;
        const lost = contract.nodes.filter((n) => JSON.stringify(listed[n.id]?.registration) !== JSON.stringify(n));
        if (lost.length)
          throw new CheckFailed(`deployer lost pre-registered node(s) across its restart: ${lost.map((n) => n.id).join(', ')}`);
        await step.evidence('preregister.json', json({ contract: contractFile, first, again, afterRestart: Object.keys(listed) }));
        return `deployer on 127.0.0.1:${port} (guests: ${deployer.url}); ${first.length} node(s) pre-registered, idempotent, kept across a restart`;
      },
    },
    {
      name: 'install',
      run: async (step) => {
        await fs.mkdir(root, { recursive: true });
        await Promise.all(
          contract.nodes.map(async (n) => {
            const ch = contract.chassis[n.id]!;
            const { files } = await launchChassis(
              root,
              {
                name: n.id,
                machineSerial: n.machine_id,
                memoryMiB: ch.memory_mib,
                disk: { serial: ch.disk_serial, mib: ch.disk_mib },
                iso: installer!.iso,
                deployerUrl: deployer!.url,
                accel: o.accel,
              },
              step.log,
            );
            trackers.set(
              n.id,
              new MarkerTracker(n.id, files.markers, {
                deadline,
                alive: async () => (await chassisPid(files.dir)) !== null,
                onMarker: (m) => rec.log.info({ node: n.id }, `marker ${m.name}${m.detail ? ` ${m.detail}` : ''} (+${seconds(m.ms)})`),
              }),
            );
          }),
        );
        for (const m of ['pre-install-boot', 'phone-home-ok', 'plan-received', 'disk-selected'] as const) await waitAll(m, step);
        return `installed: ${await waitAll('install-done', step)}`;
      },
    },
    {
      name: 'first-boot',
      run: async (step) => {
        const r = await waitAll('post-install-boot', step);
        // The marker is local; the node's report to the deployer follows it over the network.
        const nodes = await eventually("the deployer has every node's install-done and post-install-boot report", 30_000, async () => {
          const all = (await admin('GET', '/api/v1/admin/nodes')).nodes as Record<
            string,
            { progress: { stage: string }[]; phoneHomes: unknown[] }
          >;
          for (const n of contract.nodes) {
            const stages = all[n.id]?.progress.map((p) => p.stage) ?? [];
            if (!stages.includes('install-done') || !stages.includes('post-install-boot'))
              throw new CheckFailed(`${n.id} reported only: ${stages.join(', ') || 'nothing'}`);
          }
          return all;
        });
        await step.evidence('phone-home.json', json(Object.fromEntries(contract.nodes.map((n) => [n.id, nodes[n.id]?.phoneHomes]))));
        return `booted from the installed disk: ${r}`;
      },
    },
    {
      name: 'desired-system',
      run: async (step) => {
        const r = await waitAll('desired-system-active', step);
        await eventually('the deployer records every desired system active', 30_000, async () => {
          const all = (await admin('GET', '/api/v1/admin/nodes')).nodes as Record<
            string,
            { desiredSystem: { state: string; system?: string } }
          >;
          for (const n of contract.nodes) {
            const d = all[n.id]?.desiredSystem;
            if (d?.state !== 'active' || d.system !== n.desired_system?.target_system)
              throw new CheckFailed(
                `${n.id}: deployer says desired system ${d?.system ?? '?'} is ${d?.state ?? 'unknown'}, expected ${n.desired_system?.target_system} active`,
              );
          }
        });
        return `desired systems active: ${r}`;
      },
    },
  ];

  return runSteps(rec, steps, {
    finally: async () => {
      keepEvidence();
      for (const t of trackers.values()) await t.stop();
      for (const n of contract.nodes) await stopChassis(path.join(root, n.id));
      await saveChassisEvidence(
        root,
        contract.nodes.map((n) => n.id),
        rec.dir,
      );
      if (deployer) {
        try {
          await fs.writeFile(path.join(rec.dir, 'deployer', 'nodes.json'), json(deployer.store.nodes()));
        } finally {
          await deployer.close();
        }
      }
    },
  });
}

export function parseInjections(names: string[] | undefined): BaremetalInjection[] {
  return (names ?? []).map((n) => {
    if (!(n in BAREMETAL_INJECTIONS)) throw new UsageError(`unknown injection ${n} (${Object.keys(BAREMETAL_INJECTIONS).join(', ')})`);
    return n as BaremetalInjection;
  });
}
