import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { chassisPid, chassisRoot, launchChassis, saveChassisEvidence, stopAllChassis, stopChassis } from '../baremetal/chassis.js';
import { buildLabInstaller, type InstallerManifest } from '../baremetal/lab-installer.js';
import { type InstallMarker, MarkerTracker } from '../baremetal/markers.js';
import { consoleTail } from '../cluster/console.js';
import { type InstallContract, loadInstallContract, type NodeRegistration } from '../config/install-contract.js';
import { ACCEL_CHOICES, positiveNumber } from '../core/cli-values.js';
import { CheckFailed, errorMessage } from '../core/errors.js';
import { log } from '../core/log.js';
import { waitFor } from '../core/retry.js';
import type { StepContext } from '../core/run-record.js';
import { seconds } from '../core/time.js';
import { Deployer } from '../deployer/server.js';
import { DeployerStore } from '../deployer/store.js';
import { badDiskId, unhealthySystem } from '../faults/install-contract.js';
import { type AccelChoice, chooseAccel } from '../vm/accel-probe.js';
import { hostLane, type LaneEnv, type Step } from './lane.js';

/** What the steps of one bare-metal run share: the served contract, the chassis, the deployer. */
interface BaremetalCtx extends LaneEnv {
  contract: InstallContract;
  contractFile: string;
  accel: 'kvm' | 'tcg';
  root: string;
  deadline: number;
  installer?: InstallerManifest;
  deployer?: Deployer;
  /** The deployer's admin token for this run (guests never see it). */
  adminToken: string;
  trackers: Map<string, MarkerTracker>;
}

async function startDeployer(ctx: BaremetalCtx, log: Logger, port = 0): Promise<Deployer> {
  const d = new Deployer({
    contract: ctx.contract,
    adminToken: ctx.adminToken,
    store: new DeployerStore(path.join(ctx.rec.dir, 'deployer', 'state.json')),
    artifacts: path.dirname(ctx.installer!.iso),
    publicUrl: (p) => `http://10.0.2.2:${p}`, // QEMU user networking: the host's loopback as seen from a guest
    log,
  });
  await d.listen(port);
  return d;
}

async function admin(ctx: BaremetalCtx, method: string, route: string, body?: unknown): Promise<Record<string, unknown>> {
  const r = await fetch(`http://127.0.0.1:${ctx.deployer!.port}${route}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ctx.adminToken}` },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = (await r.json()) as Record<string, unknown>;
  if (!r.ok) throw new CheckFailed(`deployer ${method} ${route} -> ${r.status}: ${String(data.error)}`);
  return data;
}

/** Every machine reaches `marker`; the first that cannot fails the step with its last marker and console. */
async function waitAll(ctx: BaremetalCtx, marker: InstallMarker, step: StepContext): Promise<string> {
  const seen = await Promise.all(
    ctx.contract.nodes.map(async (n) => {
      try {
        return [n.id, await ctx.trackers.get(n.id)!.waitFor(marker)] as const;
      } catch (err) {
        const consoleFile = path.join(ctx.root, n.id, 'console.log');
        throw new CheckFailed(`${errorMessage(err)}\n--- console tail (${consoleFile}) ---\n${await consoleTail(consoleFile, 30)}`);
      }
    }),
  );
  await step.json('markers.json', Object.fromEntries([...ctx.trackers].map(([id, t]) => [id, t.seen])));
  return seen.map(([id, m]) => `${id} ${seconds(m.ms)}`).join(', ');
}

const installerImage: Step<BaremetalCtx> = {
  name: 'installer-image',
  proves: 'the lab installer ISO builds (or comes from its content-hashed cache)',
  run: async (ctx, step) => {
    ctx.installer = await buildLabInstaller(ctx.profile.dir, ctx.paths.images, step.log);
    await step.json('installer.json', ctx.installer);
    return `${ctx.installer.id}: ${path.basename(ctx.installer.iso)}, bundles ${Object.keys(ctx.installer.bundles).join(', ')}`;
  },
};

const deployer: Step<BaremetalCtx> = {
  name: 'deployer',
  proves: "the deployer takes every node's pre-registration, idempotently, and keeps it across its own restart",
  needs: ['installer-image'],
  run: async (ctx, step) => {
    ctx.deployer = await startDeployer(ctx, step.log);
    const first = await Promise.all(ctx.contract.nodes.map((n) => admin(ctx, 'POST', '/api/v1/admin/nodes', n)));
    const again = await Promise.all(ctx.contract.nodes.map((n) => admin(ctx, 'POST', '/api/v1/admin/nodes', n)));
    if (again.some((r) => r.result !== 'unchanged'))
      throw new CheckFailed(`re-registering the same nodes changed them: ${JSON.stringify(again)}`);
    // Durable across its own restart: same store, same port, the registrations are still there.
    const port = ctx.deployer.port;
    await ctx.deployer.close();
    ctx.deployer = await startDeployer(ctx, step.log, port);
    const listed = (await admin(ctx, 'GET', '/api/v1/admin/nodes')).nodes as Record<string, { registration: NodeRegistration }>;
    const lost = ctx.contract.nodes.filter((n) => JSON.stringify(listed[n.id]?.registration) !== JSON.stringify(n));
    if (lost.length) throw new CheckFailed(`deployer lost pre-registered node(s) across its restart: ${lost.map((n) => n.id).join(', ')}`);
    await step.json('preregister.json', { contract: ctx.contractFile, first, again, afterRestart: Object.keys(listed) });
    return `deployer on 127.0.0.1:${port} (guests: ${ctx.deployer.url}); ${first.length} node(s) pre-registered, idempotent, kept across a restart`;
  },
};

const install: Step<BaremetalCtx> = {
  name: 'install',
  proves: "each chassis boots the ISO, phones home, receives its class's plan, selects the by-id disk and installs",
  needs: ['deployer'],
  run: async (ctx, step) => {
    await fs.mkdir(ctx.root, { recursive: true });
    await Promise.all(
      ctx.contract.nodes.map(async (n) => {
        const ch = ctx.contract.chassis[n.id]!;
        const { files } = await launchChassis(
          ctx.root,
          {
            name: n.id,
            machineSerial: n.machine_id,
            memoryMiB: ch.memory_mib,
            disk: { serial: ch.disk_serial, mib: ch.disk_mib },
            iso: ctx.installer!.iso,
            deployerUrl: ctx.deployer!.url,
            accel: ctx.accel,
          },
          step.log,
        );
        ctx.trackers.set(
          n.id,
          new MarkerTracker(n.id, files.markers, {
            deadline: ctx.deadline,
            alive: async () => (await chassisPid(files.dir)) !== null,
            onMarker: (m) => ctx.rec.log.info({ node: n.id }, `marker ${m.name}${m.detail ? ` ${m.detail}` : ''} (+${seconds(m.ms)})`),
          }),
        );
      }),
    );
    for (const m of ['pre-install-boot', 'phone-home-ok', 'plan-received', 'disk-selected'] as const) await waitAll(ctx, m, step);
    return `installed: ${await waitAll(ctx, 'install-done', step)}`;
  },
};

const firstBoot: Step<BaremetalCtx> = {
  name: 'first-boot',
  proves: 'each machine boots from its installed disk and reports install-done and post-install-boot to the deployer',
  needs: ['install'],
  run: async (ctx, step) => {
    const r = await waitAll(ctx, 'post-install-boot', step);
    // The marker is local; the node's report to the deployer follows it over the network.
    const nodes = await waitFor(
      "the deployer has every node's install-done and post-install-boot report",
      { timeoutMs: 30_000 },
      async () => {
        const all = (await admin(ctx, 'GET', '/api/v1/admin/nodes')).nodes as Record<
          string,
          { progress: { stage: string }[]; phoneHomes: unknown[] }
        >;
        for (const n of ctx.contract.nodes) {
          const stages = all[n.id]?.progress.map((p) => p.stage) ?? [];
          if (!stages.includes('install-done') || !stages.includes('post-install-boot'))
            throw new CheckFailed(`${n.id} reported only: ${stages.join(', ') || 'nothing'}`);
        }
        return all;
      },
    );
    await step.json('phone-home.json', Object.fromEntries(ctx.contract.nodes.map((n) => [n.id, nodes[n.id]?.phoneHomes])));
    return `booted from the installed disk: ${r}`;
  },
};

const desiredSystem: Step<BaremetalCtx> = {
  name: 'desired-system',
  proves: "each machine's agent converges to its desired system, which passes its health check, and the deployer records it active",
  needs: ['first-boot'],
  run: async (ctx, step) => {
    const r = await waitAll(ctx, 'desired-system-active', step);
    await waitFor('the deployer records every desired system active', { timeoutMs: 30_000 }, async () => {
      const all = (await admin(ctx, 'GET', '/api/v1/admin/nodes')).nodes as Record<
        string,
        { desiredSystem: { state: string; system?: string } }
      >;
      for (const n of ctx.contract.nodes) {
        const d = all[n.id]?.desiredSystem;
        if (d?.state !== 'active' || d.system !== n.desired_system?.target_system)
          throw new CheckFailed(
            `${n.id}: deployer says desired system ${d?.system ?? '?'} is ${d?.state ?? 'unknown'}, expected ${n.desired_system?.target_system} active`,
          );
      }
    });
    return `desired systems active: ${r}`;
  },
};

/**
 * `baremetal-iso`: the installer ISO boots on a QEMU chassis per node, phones home to the
 * deployer, installs onto the plan's by-id disk, reboots into the installed system, whose agent
 * converges to the desired system. Markers are checked in order, per machine.
 */
export const baremetalIso = hostLane<BaremetalCtx>()({
  name: 'baremetal-iso',
  description:
    'the bare-metal install proof: installer ISO -> phone-home -> install plan -> by-id disk -> reboot -> desired system, for one control-plane and one worker machine (QEMU chassis)',
  kind: 'host',
  options: [
    {
      flags: '--accel <mode>',
      description: 'accelerator: auto = kvm when the doctor probe passed, else tcg',
      choices: ACCEL_CHOICES,
      default: 'auto',
    },
    {
      flags: '--timeout <seconds>',
      description: 'for the whole install and convergence of both machines',
      parse: positiveNumber,
      default: 900,
    },
  ],
  lockDir: (env) => chassisRoot(env.workRoot),
  prepare: async (env) => ({
    ...loadInstallContract(env.profile.dir),
    accel: await chooseAccel(env.options.accel as AccelChoice, (m) => log.warn(m)),
  }),
  context: async (env) => {
    const p = env.prepared as { contract: InstallContract; file: string; accel: 'kvm' | 'tcg' };
    const root = chassisRoot(env.workRoot);
    const stale = await stopAllChassis(root);
    if (stale.length) env.log.warn(`stopped chassis left by an earlier run: ${stale.join(', ')}`);
    return {
      ...env,
      contract: p.contract,
      contractFile: p.file,
      accel: p.accel,
      root,
      deadline: Date.now() + (env.options.timeout as number) * 1000,
      trackers: new Map(),
      adminToken: randomBytes(24).toString('hex'),
    };
  },
  steps: [installerImage, deployer, install, firstBoot, desiredSystem],
  controls: {
    'bad-disk-id': {
      description: 'the control-plane class plan names a disk id no machine has (install must fail at "disk selected")',
      breaks: 'install',
      invokeBefore: 'deployer',
      fault: (ctx) => badDiskId(ctx.contract),
    },
    'unhealthy-system': {
      description: "the worker's desired system never passes its health check (the agent must roll back; desired-system fails saying so)",
      breaks: 'desired-system',
      invokeBefore: 'deployer',
      fault: (ctx) => unhealthySystem(ctx.contract),
    },
  },
  teardown: async (ctx) => {
    for (const t of ctx.trackers.values()) await t.stop();
    for (const n of ctx.contract.nodes) await stopChassis(path.join(ctx.root, n.id));
    await saveChassisEvidence(
      ctx.root,
      ctx.contract.nodes.map((n) => n.id),
      ctx.rec.dir,
    );
    if (ctx.deployer) {
      try {
        await fs.writeFile(path.join(ctx.rec.dir, 'deployer', 'nodes.json'), `${JSON.stringify(ctx.deployer.store.nodes(), null, 2)}\n`);
      } finally {
        await ctx.deployer.close();
      }
    }
  },
});
