import { createHash } from 'node:crypto';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import type { Logger } from 'pino';
import { z } from 'zod';
import { writeFileAtomic } from '../core/atomic.js';
import { CheckFailed } from '../core/errors.js';
import { pidAlive } from '../core/proc.js';
import { shellQuote } from '../core/shell.js';
import { onCleanup } from '../core/shutdown.js';
import { seconds } from '../core/time.js';
import type { BuiltImages } from '../images/types.js';
import { nodeMacs, qemuArgv } from '../vm/qemu-argv.js';
import { Qmp, waitMigration } from '../vm/qmp.js';
import { ensureSwitch, stopSwitch } from '../vm/switch.js';
import type { Cluster } from './cluster.js';
import type { Node } from './node.js';
import { waitForSsh } from './readiness.js';

/**
 * A booted cluster saved once and restored in seconds: every guest paused together, its RAM
 * saved by QEMU migration to a file, its disk overlay frozen as a read-only backing file. Kept
 * under the image it was booted from (`images/<id>/snapshots/<key>/`), so it is pruned with the
 * image and can never outlive it; keyed by everything that must match for a restore to be the same
 * cluster (image, profile, accelerator, the harness key the guests trust, this format's version).
 */
const FORMAT = 1;

const Manifest = z.object({
  format: z.literal(FORMAT),
  key: z.string(),
  image: z.string(),
  accel: z.enum(['kvm', 'tcg']),
  createdAt: z.string(),
  saveMs: z.number(),
  bytes: z.number(),
  nodes: z.array(z.string()),
});
export type SnapshotManifest = z.infer<typeof Manifest>;

export interface Snapshot {
  dir: string;
  manifest: SnapshotManifest;
}

export function snapshotKey(cluster: Cluster, images: BuiltImages, accel: 'kvm' | 'tcg'): string {
  const h = createHash('sha256');
  h.update(`format ${FORMAT}\nimage ${images.id}\naccel ${accel}\nkey ${cluster.key.publicKey}\n`);
  h.update(readFileSync(cluster.profile.file)); // nodes, memory, services: all of it shapes the booted cluster
  // The machine QEMU is asked for (devices, memory, NICs): a harness that builds another cannot load this RAM.
  for (const n of cluster.nodes()) h.update(JSON.stringify(machineShape(n, accel)));
  return h.digest('hex').slice(0, 16);
}

/** A node's QEMU argv with every per-run path and port replaced: what must match between save and restore. */
function machineShape(n: Node, accel: 'kvm' | 'tcg'): string[] {
  const macs = nodeMacs(n.index);
  return qemuArgv({
    name: n.name,
    accel,
    memoryMiB: n.memoryMiB(),
    vcpus: n.vcpus(),
    kernel: 'K',
    initrd: 'I',
    cmdline: 'C',
    disk: 'D',
    control: { mac: macs.control, forwards: [] },
    data: { mac: macs.data, vdeSocket: 'V' },
    fwCfg: [{ name: 'opt/ultracloud/env', file: 'E' }],
    qmpSocket: 'Q',
    pidfile: 'P',
    consoleLog: 'L',
  });
}

const snapshotsDir = (cluster: Cluster, imageId: string) => path.join(cluster.paths.images, imageId, 'snapshots');

/** A complete snapshot for this key (a manifest is written last: a half-saved one is never found). */
export async function findSnapshot(cluster: Cluster, images: BuiltImages, accel: 'kvm' | 'tcg'): Promise<Snapshot | null> {
  const dir = path.join(snapshotsDir(cluster, images.id), snapshotKey(cluster, images, accel));
  try {
    const manifest = Manifest.parse(JSON.parse(await fs.readFile(path.join(dir, 'manifest.json'), 'utf8')));
    const complete = manifest.nodes.every((n) => existsSync(path.join(dir, n, 'ram')) && existsSync(path.join(dir, n, 'disk.qcow2')));
    return complete ? { dir, manifest } : null;
  } catch {
    return null;
  }
}

async function withQmp<T>(node: Node, fn: (q: Qmp) => Promise<T>): Promise<T> {
  const q = await Qmp.connect(node.files.qmp, 10_000);
  try {
    return await fn(q);
  } finally {
    q.close();
  }
}

/** Migration to or from a file is local: QEMU's default cap (32 MiB/s) only slows it down. */
const UNCAPPED = { 'max-bandwidth': 8 * 2 ** 30 };

/**
 * Save the running, ready cluster: pause every guest together, write each one's RAM and a copy of
 * its disk overlay, then resume them all. Written to a temp dir renamed into place at the end; a
 * run killed half-way leaves only a temp dir that nothing trusts and the next save sweeps.
 */
export async function saveSnapshot(cluster: Cluster, images: BuiltImages, accel: 'kvm' | 'tcg', log: Logger): Promise<Snapshot> {
  const t0 = Date.now();
  const key = snapshotKey(cluster, images, accel);
  const parent = snapshotsDir(cluster, images.id);
  await fs.mkdir(parent, { recursive: true });
  await sweepPartial(parent);
  const tmp = path.join(parent, `.tmp-${key}-${process.pid}`);
  await fs.mkdir(tmp);
  const dropTmp = onCleanup('remove the partial snapshot', () => fs.rm(tmp, { recursive: true, force: true }));
  const nodes = cluster.nodes();
  let paused: Node[] = [];
  try {
    await Promise.all(nodes.map((n) => withQmp(n, (q) => q.execute('stop'))));
    paused = nodes;
    await Promise.all(
      nodes.map(async (n) => {
        const dir = path.join(tmp, n.name);
        await fs.mkdir(dir);
        await withQmp(n, async (q) => {
          await q.execute('migrate-set-parameters', UNCAPPED);
          await q.execute('migrate', { uri: `exec:cat > ${shellQuote(path.join(dir, 'ram'))}` });
          await waitMigration(q, `${n}: saving RAM`, 300_000);
        });
        // Migration flushed and released the overlay: a copy is a consistent disk for that RAM.
        await execa('cp', ['--sparse=always', n.files.disk, path.join(dir, 'disk.qcow2')]);
        await fs.chmod(path.join(dir, 'disk.qcow2'), 0o444);
        for (const f of [n.files.hostKey, n.files.console]) await fs.copyFile(f, path.join(dir, path.basename(f))).catch(() => undefined);
      }),
    );
  } finally {
    if (paused.length) await Promise.all(paused.map((n) => withQmp(n, (q) => q.execute('cont')).catch(() => undefined)));
  }
  await stepClocks(nodes); // they slept through the save
  const bytes = await treeBytes(tmp);
  const manifest: SnapshotManifest = {
    format: FORMAT,
    key,
    image: images.id,
    accel,
    createdAt: new Date().toISOString(),
    saveMs: Date.now() - t0,
    bytes,
    nodes: nodes.map((n) => n.name),
  };
  await writeFileAtomic(path.join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const dir = path.join(parent, key);
  await fs.rm(dir, { recursive: true, force: true }); // an older save of the same key (never one in use: nothing runs from it)
  await fs.rename(tmp, dir);
  dropTmp();
  await pruneSnapshots(parent, key, log);
  log.info(`snapshot ${key}: ${nodes.length} guests saved in ${seconds(manifest.saveMs)} (${(bytes / 2 ** 30).toFixed(2)} GiB) -> ${dir}`);
  return { dir, manifest };
}

/** Snapshots of an image whose profile or key changed since: keep the new one and the newest other, like image builds. */
async function pruneSnapshots(parent: string, keep: string, log: Logger): Promise<void> {
  const others: { key: string; at: string }[] = [];
  for (const key of await fs.readdir(parent).catch(() => [] as string[])) {
    if (key === keep || key.startsWith('.')) continue;
    const m = await fs.readFile(path.join(parent, key, 'manifest.json'), 'utf8').then(
      (t) => Manifest.parse(JSON.parse(t)),
      () => null,
    );
    others.push({ key, at: m?.createdAt ?? '' });
  }
  for (const o of others.sort((a, b) => b.at.localeCompare(a.at)).slice(1)) {
    await fs.rm(path.join(parent, o.key), { recursive: true, force: true });
    log.info(`removed old snapshot ${o.key}`);
  }
}

/** Temp dirs of saves whose process is gone. */
async function sweepPartial(parent: string): Promise<void> {
  for (const n of await fs.readdir(parent).catch(() => [] as string[])) {
    const m = /^\.tmp-[0-9a-f]+-(\d+)$/.exec(n);
    if (m && !pidAlive(Number(m[1]))) await fs.rm(path.join(parent, n), { recursive: true, force: true });
  }
}

async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await fs.stat(path.join(e.parentPath, e.name))).blocks * 512;
  }
  return total;
}

export interface RestoreResult {
  ms: number;
  /** Per node: guest clock minus host clock after stepping, and the measurement's uncertainty (seconds). */
  skew: Record<string, Skew>;
}

/**
 * Restore every guest of a snapshot into the (clean) state dir: a new overlay on the frozen disk,
 * QEMU started paused with `-incoming defer`, its RAM loaded over QMP; then all resume together and
 * each guest's clock is stepped to the host's (they slept since the save). What this started is
 * stopped again if anything fails or the run is interrupted.
 */
export async function restoreSnapshot(cluster: Cluster, snap: Snapshot, images: BuiltImages, log: Logger): Promise<RestoreResult> {
  const t0 = Date.now();
  const nodes = cluster.nodes();
  const launched: Node[] = [];
  let startedSwitch = false;
  const undo = onCleanup('stop guests this restore launched', async () => {
    await Promise.all(launched.map((n) => n.shutdown(5000)));
    if (startedSwitch) await stopSwitch(cluster.paths.vde);
  });
  try {
    startedSwitch = (await ensureSwitch(cluster.paths.vde)).started;
    const avoid = await cluster.recordedPorts();
    // The overlay's backing file is the frozen disk, not the image: same layout otherwise.
    const restored: BuiltImages = {
      ...images,
      nodes: Object.fromEntries(
        nodes.map((n) => [n.name, { ...images.nodes[n.name]!, baseDisk: path.join(snap.dir, n.name, 'disk.qcow2') }]),
      ),
    };
    await Promise.all(
      nodes.map(async (n) => {
        await fs.mkdir(n.files.dir, { recursive: true, mode: 0o700 });
        for (const f of [n.files.hostKey, n.files.console])
          await fs.copyFile(path.join(snap.dir, n.name, path.basename(f)), f).catch(() => undefined);
        await n.launch({ images: restored, accel: snap.manifest.accel, avoidPorts: avoid, incoming: true });
        launched.push(n);
        await withQmp(n, async (q) => {
          await q.execute('migrate-set-parameters', UNCAPPED);
          await q.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(path.join(snap.dir, n.name, 'ram'))}` });
          await waitMigration(q, `${n}: loading RAM`, 300_000);
        });
      }),
    );
    await Promise.all(nodes.map((n) => withQmp(n, (q) => q.execute('cont'))));
  } catch (err) {
    throw new CheckFailed(`restoring snapshot ${snap.manifest.key}: ${(err as Error).message}`);
  }
  undo();
  const skew = await stepClocks(nodes);
  log.info(`snapshot ${snap.manifest.key}: ${nodes.length} guests restored in ${seconds(Date.now() - t0)}`);
  return { ms: Date.now() - t0, skew };
}

/** Guest clock minus host clock and its uncertainty (half the round trip), in seconds. */
export interface Skew {
  skewS: number;
  errS: number;
}

/**
 * Guest clock minus host clock on a warm channel: of three round trips the shortest, as NTP does
 * (a guest starved for seconds makes one round trip long, and the midpoint of a long one is a guess).
 */
async function measureSkew(n: Node): Promise<Skew> {
  let best: Skew | null = null;
  for (let i = 0; i < 3; i++) {
    const t0 = Date.now();
    const guestMs = Number(BigInt((await n.succeed(['date', '+%s%N'])).trim()) / 1_000_000n);
    const t1 = Date.now();
    const s = { skewS: (guestMs - (t0 + t1) / 2) / 1000, errS: (t1 - t0) / 2000 };
    if (!best || s.errS < best.errS) best = s;
  }
  return best!;
}

/**
 * Step each guest's clock to the host's (a paused or restored guest lags by the pause). The
 * correction is applied relative to the guest's own clock, inside the guest, so the time a
 * command takes to arrive does not become error; measured again until it is within 0.2 s or
 * within what the measurement can tell.
 */
export async function stepClocks(nodes: readonly Node[]): Promise<Record<string, Skew>> {
  const out: Record<string, Skew> = {};
  await Promise.all(
    nodes.map(async (n) => {
      // Connect outside the measurement; a guest just resumed under load may miss one handshake's 20 s.
      await waitForSsh(n, Date.now() + 120_000);
      let m = await measureSkew(n);
      for (let i = 0; i < 4 && Math.abs(m.skewS) > Math.max(0.2, m.errS); i++) {
        const deltaNs = BigInt(Math.round(-m.skewS * 1e9));
        await n.succeed(`t=$(( $(date +%s%N) + (${deltaNs}) )); date -u -s "@\${t:0:\${#t}-9}.\${t: -9}" >/dev/null`);
        m = await measureSkew(n);
      }
      out[n.name] = { skewS: Math.round(m.skewS * 100) / 100, errS: Math.round(m.errS * 100) / 100 };
    }),
  );
  return out;
}
