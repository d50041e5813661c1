import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';
import { StateLock } from '../core/lock.js';
import { ownedPid, terminate } from '../core/proc.js';
import { qemuArgv } from '../vm/qemu-argv.js';

/**
 * A QEMU guest standing in for a physical machine: firmware boots the installer ISO, the
 * target disk carries a virtio serial (so the guest sees /dev/disk/by-id/virtio-<serial>),
 * the SMBIOS serial is the machine identity, markers go to a virtio-serial port. Daemonized
 * with a pidfile under <work-root>/baremetal-iso/chassis/<name>/, so `stop` finds it after a crash.
 */
export interface ChassisSpec {
  name: string;
  machineSerial: string;
  memoryMiB: number;
  disk: { serial: string; mib: number };
  iso: string;
  deployerUrl: string;
  accel: 'kvm' | 'tcg';
}

export function chassisRoot(workRoot: string): string {
  return path.join(workRoot, 'baremetal-iso', 'chassis');
}

export function chassisFiles(dir: string) {
  return {
    dir,
    disk: path.join(dir, 'disk.qcow2'),
    console: path.join(dir, 'console.log'),
    markers: path.join(dir, 'markers.log'),
    pidfile: path.join(dir, 'qemu.pid'),
    qmp: path.join(dir, 'qmp.sock'),
    argv: path.join(dir, 'qemu.argv'),
  };
}

/** A stable, distinct MAC per chassis (QEMU's OUI, 0xb0 for bare metal), as a real NIC would have. */
export function chassisMac(name: string): string {
  const h = createHash('sha256').update(name).digest();
  return `52:54:00:b0:${h
    .subarray(0, 2)
    .toString('hex')
    .replace(/(..)(..)/, '$1:$2')}`;
}

/** Fresh disk and logs every time: an install proof starts from a blank machine. */
export async function launchChassis(
  root: string,
  spec: ChassisSpec,
  log: Logger,
): Promise<{ pid: number; files: ReturnType<typeof chassisFiles> }> {
  const f = chassisFiles(path.join(root, spec.name));
  await stopChassis(f.dir);
  await fs.rm(f.dir, { recursive: true, force: true });
  await fs.mkdir(f.dir, { recursive: true, mode: 0o700 });
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', f.disk, `${spec.disk.mib}M`]);
  await fs.chmod(f.disk, 0o600);
  const argv = qemuArgv({
    name: spec.name,
    accel: spec.accel,
    memoryMiB: spec.memoryMiB,
    vcpus: 1,
    cdrom: spec.iso,
    serialDisks: [{ file: f.disk, serial: spec.disk.serial }],
    smbiosSerial: spec.machineSerial,
    virtioSerial: { name: 'org.ultracloud.markers', file: f.markers },
    control: { mac: chassisMac(spec.name), forwards: [] },
    fwCfg: [{ name: 'opt/ultracloud/deployer', string: spec.deployerUrl }],
    qmpSocket: f.qmp,
    pidfile: f.pidfile,
    consoleLog: f.console,
  });
  await fs.writeFile(f.argv, `${argv.map((a) => JSON.stringify(a)).join(' ')}\n`);
  const r = await execa('qemu-system-x86_64', argv, { reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`${spec.name}: qemu failed to start: ${String(r.stderr).trim()}`);
  const pid = await ownedPid(f.pidfile);
  if (!pid) throw new Error(`${spec.name}: qemu daemonized but ${f.pidfile} names no live qemu`);
  log.info({ node: spec.name }, `chassis up (pid ${pid}, ${spec.accel}, disk serial ${spec.disk.serial}, machine ${spec.machineSerial})`);
  return { pid, files: f };
}

/** Copy each machine's console, marker log and argv into a run dir (also on Ctrl-C: no lost evidence). */
export async function saveChassisEvidence(root: string, names: string[], runDir: string): Promise<void> {
  for (const n of names) {
    const f = chassisFiles(path.join(root, n));
    if (!existsSync(f.dir)) continue;
    await fs.mkdir(path.join(runDir, n), { recursive: true });
    for (const p of [f.console, f.markers, f.argv]) await fs.copyFile(p, path.join(runDir, n, path.basename(p))).catch(() => undefined);
  }
}

export async function chassisPid(dir: string): Promise<number | null> {
  const f = chassisFiles(dir);
  return ownedPid(f.pidfile);
}

/** A chassis holds nothing worth a graceful shutdown: its disk is rebuilt on the next run. */
export async function stopChassis(dir: string): Promise<boolean> {
  const pid = await chassisPid(dir);
  if (pid) await terminate(pid, 5000);
  await fs.rm(chassisFiles(dir).pidfile, { force: true });
  return pid !== null;
}

/** `ultracloud stop`/`clean`: chassis a crashed run left, unless a live baremetal-iso run holds them. */
export async function stopLeftoverChassis(
  workRoot: string,
  log: Logger,
  o: { /** `clean`: also delete their disks and logs */ remove?: boolean } = {},
): Promise<string[]> {
  const root = chassisRoot(workRoot);
  if (!existsSync(root)) return [];
  let lock: StateLock;
  try {
    lock = await StateLock.acquire(root, 'stop');
  } catch (err) {
    log.warn(`chassis not touched: ${errorMessage(err)}`);
    return [];
  }
  try {
    const stopped = await stopAllChassis(root);
    if (o.remove)
      for (const e of await fs.readdir(root, { withFileTypes: true }))
        if (e.isDirectory()) await fs.rm(path.join(root, e.name), { recursive: true, force: true });
    return stopped;
  } finally {
    await lock.release();
  }
}

/** Every chassis left under the root (a crashed run): stopped by pidfile. */
export async function stopAllChassis(root: string): Promise<string[]> {
  const stopped: string[] = [];
  for (const e of await fs.readdir(root, { withFileTypes: true }).catch(() => []))
    if (e.isDirectory() && (await stopChassis(path.join(root, e.name)))) stopped.push(e.name);
  return stopped;
}
