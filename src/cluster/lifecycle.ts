import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { readinessMarker } from '../config/profile.js';
import { errorMessage, UsageError } from '../core/errors.js';
import { StateLock } from '../core/lock.js';
import { ownedPid, terminate, waitPidExit } from '../core/proc.js';
import { onCleanup } from '../core/shutdown.js';
import { seconds, within } from '../core/time.js';
import { requireTools } from '../host/tools.js';
import { buildImages } from '../images/build.js';
import type { BuiltImages } from '../images/types.js';
import { type AccelChoice, chooseAccel } from '../vm/accel-probe.js';
import { launchNode } from '../vm/launcher.js';
import { Qmp } from '../vm/qmp.js';
import { ensureSwitch, stopSwitch, switchFiles, switchPid } from '../vm/switch.js';
import type { Cluster } from './cluster.js';
import { waitForNode } from './readiness.js';
import { nodeFiles, nodeRecords, nodesInState, readNodeRecord, writeClusterRecord } from './state.js';
import { bootWaves } from './waves.js';

/** Take the state-dir lock for the rest of this process's command (released by the cleanup chain). */
export async function lockState(cluster: Cluster, command: string): Promise<void> {
  const lock = await StateLock.acquire(cluster.paths.state, command);
  onCleanup('release state lock', () => lock.release());
}

export function nodeEnv(cluster: Cluster, name: string): Record<string, string> {
  const spec = cluster.spec(name);
  const nodes = cluster.profile.nodes;
  return {
    NODE_NAME: name,
    CLUSTER_IP: spec.ip,
    CLUSTER_PREFIX: String(cluster.profile.network.prefixLength),
    ROLES: spec.roles.join(' '),
    CLUSTER_PEERS: nodes.map((n) => `${n.name}=${n.ip}`).join(' '),
    CLUSTER_ROLES: nodes.map((n) => `${n.name}=${n.roles.join(',')}`).join(' '),
    SSH_AUTHORIZED_KEY: cluster.key.publicKey,
  };
}

export interface StartOptions {
  nodes?: string[];
  accel: AccelChoice;
  /** Per wave: launch to every node of the wave ready. */
  waveTimeoutMs: number;
  keepOnFailure?: boolean;
  images?: BuiltImages;
}

/**
 * Boot the selected nodes wave by wave (each wave concurrently), waiting for SSH and units
 * before the next wave. If anything fails or the run is interrupted, what this call started is
 * stopped again (unless keepOnFailure), so a failed start never leaves guests behind.
 */
export async function startCluster(cluster: Cluster, opts: StartOptions): Promise<{ started: string[]; waves: string[][]; accel: string }> {
  const log = cluster.log;
  const waves = bootWaves(cluster.profile.nodes, opts.nodes); // validates names before anything starts
  await requireTools('qemu-system-x86_64', 'qemu-img', 'vde_switch');
  const accel = await chooseAccel(opts.accel, (m) => log.warn(m));
  const images = opts.images ?? (await buildImages(cluster.profile, cluster.paths, log));
  const started: string[] = [];
  let startedSwitch = false;
  const undo = onCleanup('stop guests this start launched', async (reason) => {
    if (started.length === 0 && !startedSwitch) return;
    log.warn(`${reason}: stopping ${started.length} guest(s) this start launched`);
    await stopNodes(cluster, started, { log, powerdownMs: 5000 });
    if (startedSwitch && (await runningNodes(cluster)).length === 0) await stopSwitch(cluster.paths.vde);
  });
  const sw = await ensureSwitch(cluster.paths.vde);
  startedSwitch = sw.started;
  if (sw.started) log.info(`cluster network: vde_switch pid ${sw.pid} at ${switchFiles(cluster.paths.vde).ctl}`);

  const avoid = await recordedPorts(cluster);
  log.info(`boot order: ${waves.map((w, i) => `wave ${i + 1} [${w.join(', ')}]`).join(' -> ')} (accel ${accel})`);
  try {
    await bootInWaves(cluster, waves, { images, accel, avoid, started, timeoutMs: opts.waveTimeoutMs });
  } catch (err) {
    if (opts.keepOnFailure) {
      undo();
      log.warn(`--keep-on-failure: leaving ${started.join(', ') || 'no'} guest(s) running for inspection`);
    }
    throw err;
  }
  undo();
  await writeClusterRecord(cluster.paths.state, {
    profile: cluster.profile.name,
    profileFile: cluster.profile.file,
    startedAt: new Date().toISOString(),
    nodes: await runningNodes(cluster),
  });
  return { started, waves, accel };
}

async function bootInWaves(
  cluster: Cluster,
  waves: string[][],
  o: { images: BuiltImages; accel: 'kvm' | 'tcg'; avoid: Set<number>; started: string[]; timeoutMs: number },
): Promise<void> {
  const { log } = cluster;
  const { images, accel, avoid, started } = o;
  for (const [i, wave] of waves.entries()) {
    const t0 = Date.now();
    const launched = await Promise.all(
      wave.map(async (name) => {
        const res = await launchClusterNode(cluster, name, { images, accel, avoid });
        if (!res.alreadyRunning) started.push(name);
        else log.info({ node: name }, `already running (pid ${res.pid})`);
        return name;
      }),
    );
    await Promise.all(launched.map((name) => waitForNode(cluster, name, o.timeoutMs)));
    log.info(`wave ${i + 1}/${waves.length} ready in ${seconds(Date.now() - t0)}: ${wave.join(', ')}`);
  }
}

/** Launch (or find running) one node of the profile with its disk, env and forwards. */
export async function launchClusterNode(
  cluster: Cluster,
  name: string,
  o: { images: BuiltImages; accel: 'kvm' | 'tcg'; avoid?: Set<number> },
) {
  const spec = cluster.spec(name);
  const avoid = o.avoid ?? (await recordedPorts(cluster));
  return launchNode(
    {
      stateDir: cluster.paths.state,
      vdeSocket: switchFiles(cluster.paths.vde).ctl,
      node: {
        name,
        index: cluster.nodeIndex(name),
        ip: spec.ip,
        roles: spec.roles,
        memoryMiB: cluster.memoryMiB(name),
        vcpus: cluster.vcpus(name),
      },
      artifacts: o.images.nodes[name]!,
      imageId: o.images.id,
      accel: o.accel,
      forwards: cluster.forwards(name),
      env: nodeEnv(cluster, name),
      units: cluster.units(name),
      avoidPorts: avoid,
    },
    cluster.log,
  );
}

/** Host ports recorded by any node of this state dir (so a new launch never reuses them). */
async function recordedPorts(cluster: Cluster): Promise<Set<number>> {
  return new Set((await nodeRecords(cluster.paths.state)).flatMap((r) => Object.values(r.ports).map((p) => p.host)));
}

/** Nodes in the state dir whose recorded qemu still runs. */
export async function runningNodes(cluster: Cluster): Promise<string[]> {
  const out: string[] = [];
  for (const n of await nodesInState(cluster.paths.state)) if (await cluster.pid(n)) out.push(n);
  return out;
}

export type StopMethod = 'powerdown' | 'term' | 'kill' | 'not running';

/** Stop one guest by its recorded pid: QMP system_powerdown, then SIGTERM, then SIGKILL. */
export async function stopNode(stateDir: string, name: string, powerdownMs: number): Promise<StopMethod> {
  const f = nodeFiles(stateDir, name);
  const pid = await ownedPid(f.pidfile, f.pidfile);
  let method: StopMethod = 'not running';
  if (pid) {
    // A diskless guest (kernel + initramfs) has nothing to flush and often no ACPI handler: signal it.
    const exited = existsSync(f.disk) && (await powerdown(f.qmp, pid, powerdownMs));
    method = exited ? 'powerdown' : (await terminate(pid, 5000)) === 'kill' ? 'kill' : 'term';
  }
  await fs.rm(f.pidfile, { force: true });
  await fs.rm(f.qmp, { force: true });
  return method;
}

/** QMP system_powerdown and wait for the exit; false if the guest ignored it or QMP is gone (wedged guest). */
async function powerdown(qmpSocket: string, pid: number, timeoutMs: number): Promise<boolean> {
  try {
    const qmp = await Qmp.connect(qmpSocket, 3000);
    await qmp.execute('system_powerdown');
    const exited = (await within(qmp.closed, timeoutMs)) !== 'timeout' && (await waitPidExit(pid, 5000));
    qmp.close();
    return exited;
  } catch {
    return false;
  }
}

export async function stopNodes(
  cluster: Cluster,
  names: string[],
  opts: { log: Logger; powerdownMs?: number },
): Promise<Record<string, StopMethod>> {
  cluster.pool.closeAll();
  const results = await Promise.all(
    names.map(async (n) => [n, await stopNode(cluster.paths.state, n, opts.powerdownMs ?? 45000)] as const),
  );
  for (const [n, m] of results) if (m !== 'not running') opts.log.info({ node: n }, `stopped (${m})`);
  return Object.fromEntries(results);
}

/** Stop the given nodes (default: every node in the state dir), then the switch once nothing uses it. */
export async function stopCluster(
  cluster: Cluster,
  opts: { nodes?: string[]; powerdownMs?: number } = {},
): Promise<{ nodes: Record<string, StopMethod>; switchStopped: boolean }> {
  const all = await nodesInState(cluster.paths.state);
  const unknown = (opts.nodes ?? []).filter((n) => !all.includes(n) && !cluster.profile.nodes.some((x) => x.name === n));
  if (unknown.length) throw new UsageError(`unknown node(s): ${unknown.join(', ')}`);
  const nodes = await stopNodes(cluster, opts.nodes ?? all, { log: cluster.log, powerdownMs: opts.powerdownMs });
  let switchStopped = false;
  if ((await runningNodes(cluster)).length === 0) switchStopped = await stopSwitch(cluster.paths.vde);
  return { nodes, switchStopped };
}

export interface NodeStatus {
  name: string;
  pid: number | null;
  running: boolean;
  accel: string | null;
  ip: string | null;
  ports: Record<string, number>;
  /** `not used` when the profile's readiness is a console marker (kernel-only guests). */
  ssh: 'reachable' | 'unreachable' | 'not running' | 'not used';
  /** Console-marker profiles: whether this boot printed the marker. */
  marker?: boolean;
  units: Record<string, string>;
  error?: string;
}

export async function clusterStatus(cluster: Cluster): Promise<{ switchPid: number | null; nodes: NodeStatus[] }> {
  const names = [...new Set([...cluster.profile.nodes.map((n) => n.name), ...(await nodesInState(cluster.paths.state))])];
  const nodes = await Promise.all(
    names.map(async (name): Promise<NodeStatus> => {
      const pid = await cluster.pid(name);
      const rec = await readNodeRecord(cluster.paths.state, name);
      const st: NodeStatus = {
        name,
        pid,
        running: pid !== null,
        accel: rec?.accel ?? null,
        ip: rec?.ip ?? null,
        ports: Object.fromEntries(Object.entries(rec?.ports ?? {}).map(([k, v]) => [k, v.host])),
        ssh: 'not running',
        units: {},
      };
      if (!pid || !rec) return st;
      const marker = readinessMarker(cluster.profile, name);
      if (marker) {
        st.ssh = 'not used';
        const text = await fs.readFile(cluster.files(name).console).then(
          (b) => b.subarray(rec.consoleOffset).toString('utf8'),
          () => '',
        );
        st.marker = text.includes(marker);
        return st;
      }
      try {
        const t = await cluster.target(name);
        await cluster.pool.client(t, 8000);
        st.ssh = 'reachable';
        const out = await cluster.exec(name, `systemctl is-active ${rec.units.map((u) => `'${u}'`).join(' ')}`, { timeoutMs: 10000 });
        const states = out.stdout.trim().split('\n');
        for (const [i, u] of rec.units.entries()) st.units[u] = states[i] ?? 'unknown';
      } catch (err) {
        st.ssh = 'unreachable';
        st.error = errorMessage(err).split('\n')[0];
      }
      return st;
    }),
  );
  return { switchPid: await switchPid(cluster.paths.vde), nodes };
}

/** Stop everything, then remove runtime state; never touches anything outside the work root. */
export async function cleanCluster(cluster: Cluster): Promise<string[]> {
  await stopCluster(cluster, { powerdownMs: 20000 });
  const root = path.resolve(cluster.paths.workRoot) + path.sep;
  const removed: string[] = [];
  for (const dir of [cluster.paths.state, cluster.paths.vde]) {
    if (!path.resolve(dir).startsWith(root)) {
      cluster.log.warn(
        `not removing ${dir}: it is outside the work root ${cluster.paths.workRoot} (set by PHOTON_VM_DIR or PHOTON_CLUSTER_VDE_SWITCH_DIR); remove it yourself`,
      );
      continue;
    }
    await fs.rm(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}
