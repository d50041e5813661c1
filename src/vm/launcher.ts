import { existsSync, promises as fs } from 'node:fs';
import { execa } from 'execa';
import type { Logger } from 'pino';
import { ownedPid } from '../core/proc.js';
import { renderEnvFile } from '../core/shell.js';
import type { BootArtifacts } from '../images/types.js';
import { allocatePorts } from './ports.js';
import { nodeMacs, qemuArgv } from './qemu-argv.js';
import { type NodeRecord, nodeFiles, readNodeRecord, writeNodeRecord } from './state.js';

export interface LaunchRequest {
  stateDir: string;
  vdeSocket?: string;
  node: { name: string; index: number; ip: string; roles: string[]; memoryMiB: number; vcpus: number };
  artifacts: BootArtifacts;
  imageId: string;
  accel: 'kvm' | 'tcg';
  /** name -> guest port to forward from 127.0.0.1 (ssh is always added). */
  forwards: Record<string, number>;
  /** Shell env file contents passed over fw_cfg (opt/ultracloud/env). */
  env: Record<string, string>;
  units: string[];
  /** Host ports already taken by other nodes of this cluster. */
  avoidPorts: Set<number>;
  /** Start paused, waiting for its RAM from a snapshot (QMP migrate-incoming). */
  incoming?: boolean;
}

/**
 * Launch one guest, daemonized with a pidfile so any later process finds it. Disk = qcow2
 * overlay on the read-only base (kept across restarts so a power-cut node comes back with
 * its data). Host ports are picked here; a lost bind race is retried with fresh ports.
 */
export async function launchNode(req: LaunchRequest, log: Logger): Promise<{ record: NodeRecord; pid: number; alreadyRunning: boolean }> {
  const f = nodeFiles(req.stateDir, req.node.name);
  const running = await ownedPid(f.pidfile);
  const prior = await readNodeRecord(req.stateDir, req.node.name);
  if (running && prior) return { record: prior, pid: running, alreadyRunning: true };

  await fs.mkdir(f.dir, { recursive: true, mode: 0o700 });
  if (req.artifacts.baseDisk && (!existsSync(f.disk) || prior?.image !== req.imageId)) {
    await fs.rm(f.disk, { force: true });
    await fs.rm(f.hostKey, { force: true }); // a new disk makes new host keys at first boot
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', req.artifacts.baseDisk, '-F', 'qcow2', f.disk]);
    await fs.chmod(f.disk, 0o600); // a node's disk holds its keys and data: its owner only
  }
  const macs = nodeMacs(req.node.index);
  await fs.writeFile(f.env, renderEnvFile({ ...req.env, CLUSTER_MAC: macs.data }));
  await fs.rm(f.qmp, { force: true });
  const consoleOffset = (await fs.stat(f.console).catch(() => null))?.size ?? 0;

  const names = ['ssh', ...Object.keys(req.forwards).filter((n) => n !== 'ssh')];
  const guestPorts: Record<string, number> = { ssh: 22, ...req.forwards };
  let lastError = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    const hostPorts = await allocatePorts(names.length, req.avoidPorts);
    const ports = Object.fromEntries(names.map((n, i) => [n, { guest: guestPorts[n]!, host: hostPorts[i]! }]));
    const argv = qemuArgv({
      name: req.node.name,
      accel: req.accel,
      memoryMiB: req.node.memoryMiB,
      vcpus: req.node.vcpus,
      kernel: req.artifacts.kernel,
      initrd: req.artifacts.initrd,
      cmdline: req.artifacts.cmdline,
      disk: req.artifacts.baseDisk ? f.disk : undefined,
      control: { mac: macs.control, forwards: Object.values(ports).map((p) => ({ hostPort: p.host, guestPort: p.guest })) },
      data: req.vdeSocket ? { mac: macs.data, vdeSocket: req.vdeSocket } : undefined,
      fwCfg: [{ name: 'opt/ultracloud/env', file: f.env }],
      qmpSocket: f.qmp,
      pidfile: f.pidfile,
      consoleLog: f.console,
      incoming: req.incoming,
    });
    await fs.writeFile(`${f.dir}/qemu.argv`, `${argv.map((a) => JSON.stringify(a)).join(' ')}\n`);
    // -daemonize: argv and host-forward errors are reported before QEMU detaches.
    const r = await execa('qemu-system-x86_64', argv, { reject: false, stdin: 'ignore' });
    if (r.exitCode === 0) {
      const pid = await ownedPid(f.pidfile);
      if (!pid) throw new Error(`${req.node.name}: qemu daemonized but ${f.pidfile} names no live qemu`);
      const record: NodeRecord = {
        name: req.node.name,
        ip: req.node.ip,
        roles: req.node.roles,
        accel: req.accel,
        ports,
        units: req.units,
        image: req.imageId,
        startedAt: new Date().toISOString(),
        consoleOffset,
      };
      await writeNodeRecord(req.stateDir, record);
      for (const p of Object.values(ports)) req.avoidPorts.add(p.host);
      log.info({ node: req.node.name, pid }, `launched (pid ${pid}, ${req.accel}, ssh 127.0.0.1:${ports.ssh!.host})`);
      return { record, pid, alreadyRunning: false };
    }
    lastError = String(r.stderr).trim();
    if (!/host ?forward|Could not set up host forwarding|Address already in use/i.test(lastError)) break;
    log.warn({ node: req.node.name }, `port race on attempt ${attempt}: ${lastError}; retrying with other ports`);
  }
  throw new Error(`${req.node.name}: qemu failed to start: ${lastError}`);
}
