import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ClusterPaths } from '../config/paths.js';
import { errorMessage, UsageError } from '../core/errors.js';
import { LOCK_FILE, StateLock } from '../core/lock.js';
import { allOrAbort } from '../core/retry.js';
import { onCleanup } from '../core/shutdown.js';
import { seconds } from '../core/time.js';
import { checkRemovable, ensureWorkRoot, removeWithin } from '../core/work-root.js';
import { requireTools } from '../host/tools.js';
import { type BuildOptions, buildImages } from '../images/build.js';
import type { BuiltImages } from '../images/types.js';
import { type AccelChoice, chooseAccel } from '../vm/accel-probe.js';
import { nodeRecords, nodesInState, readNodeRecord } from '../vm/state.js';
import { ensureSwitch, stopSwitch, switchFiles, switchPid } from '../vm/switch.js';
import type { Cluster } from './cluster.js';
import { type ForwardStatus, listForwards, stopForwards } from './host-forward.js';
import type { Node, StopMethod } from './node.js';
import { bootWaves } from './waves.js';

/** Take the state-dir lock for the rest of this process's command (released by the cleanup chain). */
export async function lockState(cluster: Cluster, command: string): Promise<StateLock> {
  await ensureWorkRoot(cluster.paths.workRoot); // marked before the state dir makes it non-empty
  const lock = await StateLock.acquire(cluster.paths.state, command);
  onCleanup('release state lock', () => lock.release());
  return lock;
}

/** Image builds some node disk (of any profile's state dir under this work root) still sits on. */
export async function imagesInUse(paths: ClusterPaths): Promise<Set<string>> {
  const parent = path.dirname(paths.state);
  const siblings = (await fs.readdir(parent).catch(() => [] as string[]))
    .filter((d) => d.startsWith('state'))
    .map((d) => path.join(parent, d));
  const inUse = new Set<string>();
  for (const dir of new Set([...siblings, paths.state])) for (const r of await nodeRecords(dir)) inUse.add(r.image);
  return inUse;
}

/** Build (or reuse) the profile's images; old builds are pruned unless a node disk uses them. */
export async function buildClusterImages(cluster: Cluster, log: Logger, opts: Omit<BuildOptions, 'inUse'> = {}): Promise<BuiltImages> {
  return buildImages(cluster.profile, cluster.paths, log, { ...opts, inUse: await imagesInUse(cluster.paths) });
}

export interface StartOptions {
  nodes?: string[];
  accel: AccelChoice;
  /** Per wave: launch to every node of the wave ready. */
  waveTimeoutMs: number;
  keepOnFailure?: boolean;
  images?: BuiltImages;
}

export interface StartResult {
  started: string[];
  waves: string[][];
  accel: 'kvm' | 'tcg';
  /** Per node: ms from launch to ready. */
  readyMs: Record<string, number>;
  /** Per node: when its QEMU was launched and when it was ready (ISO times): the report's boot timeline. */
  timeline: Record<string, { launchedAt: string; readyAt: string }>;
}

/**
 * Boot the selected nodes wave by wave (each wave concurrently), waiting for SSH and units
 * before the next wave. If anything fails or the run is interrupted, what this call started is
 * stopped again (unless keepOnFailure), so a failed start never leaves guests behind.
 */
export async function startCluster(cluster: Cluster, opts: StartOptions): Promise<StartResult> {
  const log = cluster.log;
  const waves = bootWaves(cluster.profile.nodes, opts.nodes); // validates names before anything starts
  await requireTools('qemu-system-x86_64', 'qemu-img', 'vde_switch');
  const accel = await chooseAccel(opts.accel, (m) => log.warn(m));
  const images = opts.images ?? (await buildClusterImages(cluster, log));
  const started: string[] = [];
  let startedSwitch = false;
  const undo = onCleanup('stop guests this start launched', async (reason) => {
    if (started.length === 0 && !startedSwitch) return;
    log.warn(`${reason}: stopping ${started.length} guest(s) this start launched`);
    await Promise.all(started.map((n) => cluster.node(n).shutdown(5000)));
    if (startedSwitch && (await cluster.running()).length === 0) await stopSwitch(cluster.paths.vde);
  });
  const sw = await ensureSwitch(cluster.paths.vde);
  startedSwitch = sw.started;
  if (sw.started) log.info(`cluster network: vde_switch pid ${sw.pid} at ${switchFiles(cluster.paths.vde).ctl}`);

  const avoid = await cluster.recordedPorts();
  const readyMs: Record<string, number> = {};
  const timeline: StartResult['timeline'] = {};
  log.info(`boot order: ${waves.map((w, i) => `wave ${i + 1} [${w.join(', ')}]`).join(' -> ')} (accel ${accel})`);
  try {
    for (const [i, wave] of waves.entries()) {
      const t0 = Date.now();
      const nodes = wave.map((n) => cluster.node(n));
      await Promise.all(
        nodes.map(async (node) => {
          const res = await node.launch({ images, accel, avoidPorts: avoid });
          if (!res.alreadyRunning) started.push(node.name);
          else log.info({ node: node.name }, `already running (pid ${res.pid})`);
        }),
      );
      await allOrAbort(nodes, async (node, signal) => {
        readyMs[node.name] = await node.waitReady(opts.waveTimeoutMs, signal);
        timeline[node.name] = { launchedAt: new Date(t0).toISOString(), readyAt: new Date().toISOString() };
      });
      log.info(`wave ${i + 1}/${waves.length} ready in ${seconds(Date.now() - t0)}: ${wave.join(', ')}`);
    }
  } catch (err) {
    if (opts.keepOnFailure) {
      undo();
      log.warn(`--keep-on-failure: leaving ${started.join(', ') || 'no'} guest(s) running for inspection`);
    }
    throw err;
  }
  undo();
  return { started, waves, accel, readyMs, timeline };
}

/** A Node for a name found in the state dir, even one the current profile does not have (left by another). */
function nodeOrOrphan(cluster: Cluster, name: string): Node {
  try {
    return cluster.node(name);
  } catch {
    return cluster.orphan(name);
  }
}

/**
 * Stop the host forwards through the given nodes, the nodes (default: every node in the state dir,
 * and every forward), then the switch once nothing uses it.
 */
export async function stopCluster(
  cluster: Cluster,
  opts: { nodes?: string[]; powerdownMs?: number } = {},
): Promise<{ nodes: Record<string, StopMethod>; forwards: Record<string, string>; switchStopped: boolean }> {
  const all = await nodesInState(cluster.paths.state);
  const unknown = (opts.nodes ?? []).filter((n) => !all.includes(n) && !cluster.profile.nodes.some((x) => x.name === n));
  if (unknown.length) throw new UsageError(`unknown node(s): ${unknown.join(', ')}`);
  const forwards = await stopForwards(cluster.paths.state, opts.nodes);
  for (const [f, m] of Object.entries(forwards)) if (m !== 'not running') cluster.log.info(`forward ${f} stopped (${m})`);
  cluster.pool.closeAll();
  const results = await Promise.all(
    (opts.nodes ?? all).map(async (n) => [n, await nodeOrOrphan(cluster, n).shutdown(opts.powerdownMs ?? 45_000)] as const),
  );
  for (const [n, m] of results) if (m !== 'not running') cluster.log.info({ node: n }, `stopped (${m})`);
  let switchStopped = false;
  if ((await Promise.all(all.map((n) => nodeOrOrphan(cluster, n).running()))).every((up) => !up))
    switchStopped = await stopSwitch(cluster.paths.vde);
  return { nodes: Object.fromEntries(results), forwards, switchStopped };
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
  /** Units of deferred services (started after boot, not part of readiness), when the node has any. */
  deferred?: Record<string, string>;
  error?: string;
}

export async function clusterStatus(
  cluster: Cluster,
): Promise<{ switchPid: number | null; nodes: NodeStatus[]; forwards: ForwardStatus[] }> {
  const names = [...new Set([...cluster.profile.nodes.map((n) => n.name), ...(await nodesInState(cluster.paths.state))])];
  const nodes = await Promise.all(
    names.map(async (name): Promise<NodeStatus> => {
      const node = nodeOrOrphan(cluster, name);
      const pid = await node.pid();
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
      const marker = node.marker();
      if (marker) {
        st.ssh = 'not used';
        const text = await fs.readFile(node.files.console).then(
          (b) => b.subarray(rec.consoleOffset).toString('utf8'),
          () => '',
        );
        st.marker = text.includes(marker);
        return st;
      }
      try {
        await cluster.pool.client(await node.target(), 8000);
        st.ssh = 'reachable';
        st.units = await node.unitStates(rec.units);
        const deferred = node.deferredUnits().map((d) => d.unit);
        if (deferred.length) st.deferred = await node.unitStates(deferred);
      } catch (err) {
        st.ssh = 'unreachable';
        st.error = errorMessage(err).split('\n')[0];
      }
      return st;
    }),
  );
  return { switchPid: await switchPid(cluster.paths.vde), nodes, forwards: await listForwards(cluster.paths.state) };
}

/**
 * What `clean` would remove, checked before anything happens (no lock taken, nothing stopped):
 * only inside the work root (real paths, no symlink followed out, nothing mounted), and never a
 * directory the harness keeps for something else (the image cache, keys).
 */
export async function checkCleanable(paths: ClusterPaths): Promise<void> {
  const owned = [paths.workRoot, paths.images, paths.keys];
  for (const dir of [paths.state, paths.vde]) {
    const clash = owned.find((o) => path.resolve(o) === path.resolve(dir) || path.resolve(o).startsWith(path.resolve(dir) + path.sep));
    if (clash)
      throw new UsageError(
        `refusing to clean ${dir}: it is or holds ${clash}, which the harness keeps (check PHOTON_VM_DIR / PHOTON_CLUSTER_VDE_SWITCH_DIR)`,
      );
    await checkRemovable(paths.workRoot, dir);
  }
}

/** Stop everything, then remove runtime state (after `checkCleanable`), keeping the lock of the harness doing it. */
export async function cleanCluster(cluster: Cluster): Promise<string[]> {
  const { paths } = cluster;
  await checkCleanable(paths);
  await stopCluster(cluster, { powerdownMs: 0 }); // its disks are deleted next: no shutdown to wait for
  const removed: string[] = [];
  for (const dir of [paths.state, paths.vde]) {
    if ((await removeWithin(paths.workRoot, dir, { keep: dir === paths.state ? [LOCK_FILE] : [] })) === 'removed') removed.push(dir);
  }
  return removed;
}
