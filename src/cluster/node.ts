import { existsSync, promises as fs } from 'node:fs';
import type { Logger } from 'pino';
import { expectedUnits, type NodeSpec, nodeMemory, nodeVcpus, readinessMarker, servicesOn } from '../config/profile.js';
import { CheckFailed, UsageError } from '../core/errors.js';
import { ownedPid, terminate, waitPidExit } from '../core/proc.js';
import { shellCommand } from '../core/shell.js';
import { within } from '../core/time.js';
import { imagesById } from '../images/build.js';
import type { BuiltImages } from '../images/types.js';
import { launchNode } from '../vm/launcher.js';
import { Qmp } from '../vm/qmp.js';
import { type NodeFiles, type NodeRecord, nodeFiles, readNodeRecord } from '../vm/state.js';
import { switchFiles } from '../vm/switch.js';
import type { Cluster } from './cluster.js';
import { consoleTail } from './console.js';
import { waitForNode, waitForUnits } from './readiness.js';
import type { ExecOptions, ExecResult, SshTarget } from './ssh-pool.js';

/**
 * What runs on a node: an argv (each word quoted, so data never becomes shell syntax) or a
 * fixed script written in the code. Anything from a profile, a URL or a user goes in argv,
 * or through `shellQuote` into a script.
 */
export type Command = readonly string[] | string;

export class CommandFailed extends CheckFailed {
  override name = 'CommandFailed';
}

export type StopMethod = 'powerdown' | 'term' | 'kill' | 'not running';

const render = (c: Command) => (typeof c === 'string' ? c : shellCommand(c));

/**
 * A handle on one node of a cluster (the NixOS test driver's Machine): commands with exit codes
 * and deadlines, services reached through forwarded ports, units, the console and the journal,
 * and its power: crash (pull the plug), start (boot again on its disk), shutdown.
 */
export class Node {
  readonly files: NodeFiles;

  constructor(
    private readonly cluster: Cluster,
    readonly spec: NodeSpec,
  ) {
    this.files = nodeFiles(cluster.paths.state, spec.name);
  }

  get name(): string {
    return this.spec.name;
  }

  get ip(): string {
    return this.spec.ip;
  }

  /** 1-based position in the profile: stable MACs derive from it. */
  get index(): number {
    return this.cluster.indexOf(this.name);
  }

  get log(): Logger {
    return this.cluster.log;
  }

  get roles(): readonly string[] {
    return this.spec.roles;
  }

  hasRole(role: string): boolean {
    return this.spec.roles.includes(role);
  }

  /** Units readiness expects active here: the profile's base units plus every service placed on the node. */
  units(): string[] {
    return expectedUnits(this.cluster.profile, this.spec);
  }

  /** The console marker this node prints when ready (kernel-only guests), or null for SSH readiness. */
  marker(): string | null {
    return readinessMarker(this.cluster.profile, this.name);
  }

  memoryMiB(): number {
    return nodeMemory(this.cluster.profile, this.spec);
  }

  vcpus(): number {
    return nodeVcpus(this.cluster.profile, this.spec);
  }

  /** Guest ports to forward: the node's own plus every exposed port of the services on it. */
  forwards(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const f of this.spec.forwards) out[f.name] = f.port;
    for (const [svc, c] of servicesOn(this.cluster.profile, this.spec))
      for (const p of c.ports) if (p.expose) out[`${svc}-${p.name}`] = p.port;
    return out;
  }

  toString(): string {
    return this.name;
  }

  // --- runtime state -------------------------------------------------------------------------

  /** The pid of this node's QEMU, when the pidfile names a live QEMU of ours. */
  pid(): Promise<number | null> {
    return ownedPid(this.files.pidfile);
  }

  async running(): Promise<boolean> {
    return (await this.pid()) !== null;
  }

  async record(): Promise<NodeRecord> {
    const r = await readNodeRecord(this.cluster.paths.state, this.name);
    if (!r) throw new UsageError(`${this.name} has not been started (no ${this.files.record}); run: ultracloud start`);
    return r;
  }

  /** The host port (127.0.0.1) QEMU forwards to a named guest port. */
  async hostPort(portName: string): Promise<number> {
    const r = await this.record();
    const p = r.ports[portName];
    if (!p) throw new UsageError(`${this.name} has no forwarded port "${portName}" (has: ${Object.keys(r.ports).join(', ')})`);
    return p.host;
  }

  async target(): Promise<SshTarget> {
    return { node: this.name, port: await this.hostPort('ssh'), privateKey: this.cluster.key.privateKey, hostKeyFile: this.files.hostKey };
  }

  // --- commands ----------------------------------------------------------------------------

  /** Run a command; its exit code, stdout and stderr, whatever they are. */
  async exec(cmd: Command, o: ExecOptions = {}): Promise<ExecResult> {
    return this.cluster.pool.exec(await this.target(), render(cmd), { timeoutMs: 60_000, ...o });
  }

  /** Run a command that must succeed; its stdout. A failure names the node, the command, the exit code and stderr. */
  async succeed(cmd: Command, o: ExecOptions = {}): Promise<string> {
    const r = await this.exec(cmd, o);
    if (r.code !== 0)
      throw new CommandFailed(
        `${this.name}: \`${render(cmd).slice(0, 200)}\` exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 2000)}`,
      );
    return r.stdout;
  }

  /** Run a command that must fail (a negative check); its stderr. */
  async fail(cmd: Command, o: ExecOptions = {}): Promise<string> {
    const r = await this.exec(cmd, o);
    if (r.code === 0)
      throw new CommandFailed(
        `${this.name}: \`${render(cmd).slice(0, 200)}\` succeeded but was expected to fail: ${r.stdout.trim().slice(0, 500)}`,
      );
    return r.stderr;
  }

  // --- services ----------------------------------------------------------------------------

  /**
   * A host port that reaches `port` on this node's loopback, or on `host` as this node reaches it
   * (a VM on a tenant network), by ssh port forwarding on the pooled connection.
   */
  forward(port: number, host = '127.0.0.1'): Promise<number> {
    return this.cluster.pool.forward(this.name, () => this.target(), port, host);
  }

  /**
   * argv for the system `ssh` client into this node, pinned to the host key the harness recorded
   * (connects once first, which pins it on first contact): for a real terminal, or to compare.
   */
  async sshArgv(options: string[] = []): Promise<string[]> {
    const t = await this.target();
    await this.cluster.pool.client(t, 10_000);
    await fs.writeFile(this.files.knownHosts, `[127.0.0.1]:${t.port} ${(await fs.readFile(this.files.hostKey, 'utf8')).trim()}\n`);
    const opts = [`UserKnownHostsFile=${this.files.knownHosts}`, 'StrictHostKeyChecking=yes', 'IdentitiesOnly=yes', ...options].flatMap(
      (o) => ['-o', o],
    );
    return ['-i', this.cluster.key.privateKey, '-p', String(t.port), ...opts, 'root@127.0.0.1'];
  }

  /** Base URL of an HTTP service on this node (or on `host` as this node reaches it), as seen from inside it. */
  async url(port: number, host?: string): Promise<string> {
    return `http://127.0.0.1:${await this.forward(port, host)}`;
  }

  /** systemd's view of units: ActiveState per unit (active, inactive, failed, activating, ...). */
  async unitStates(units: readonly string[]): Promise<Record<string, string>> {
    const r = await this.exec(['systemctl', 'is-active', ...units], { timeoutMs: 15_000 });
    const states = r.stdout.trim().split('\n');
    return Object.fromEntries(units.map((u, i) => [u, states[i] ?? 'unknown']));
  }

  // --- logs ---------------------------------------------------------------------------------

  /** The last lines of the serial console (works with the guest down). */
  console(lines = 40): Promise<string> {
    return consoleTail(this.files.console, lines);
  }

  /** The journal of the current boot, last `lines` lines. */
  journal(lines = 200, o: { priority?: string } = {}): Promise<string> {
    const argv = ['journalctl', '-b', '--no-pager', '-n', String(Math.floor(lines)), ...(o.priority ? ['-p', o.priority] : [])];
    return this.succeed(argv, { timeoutMs: 30_000 });
  }

  // --- power -------------------------------------------------------------------------------

  /** Launch QEMU on this node's disk (created on first boot as an overlay on the image); returns without waiting. */
  async launch(o: { images: BuiltImages; accel: 'kvm' | 'tcg'; avoidPorts?: Set<number>; incoming?: boolean }) {
    const artifacts = o.images.nodes[this.name];
    if (!artifacts) throw new UsageError(`image ${o.images.id} has nothing for ${this.name}`);
    return launchNode(
      {
        stateDir: this.cluster.paths.state,
        vdeSocket: switchFiles(this.cluster.paths.vde).ctl,
        node: {
          name: this.name,
          index: this.index,
          ip: this.ip,
          roles: [...this.roles],
          memoryMiB: this.memoryMiB(),
          vcpus: this.vcpus(),
        },
        artifacts,
        imageId: o.images.id,
        accel: o.accel,
        forwards: this.forwards(),
        env: this.cluster.nodeEnv(this),
        units: this.units(),
        avoidPorts: o.avoidPorts ?? (await this.cluster.recordedPorts()),
        incoming: o.incoming,
      },
      this.cluster.log,
    );
  }

  /** Wait until one unit is active (the NixOS driver's wait_for_unit); fails at once if it failed, is masked or was stopped. */
  waitForUnit(unit: string, timeoutMs = 120_000): Promise<void> {
    return waitForUnits(this, Date.now() + timeoutMs, [unit]);
  }

  /** The units of the deferred services placed here (slow starters readiness leaves out), with their contracts' deadlines. */
  deferredUnits(): { unit: string; withinMs: number }[] {
    return servicesOn(this.cluster.profile, this.spec).flatMap(([, c]) =>
      c.deferred ? [{ unit: c.unit, withinMs: c.deferred.readyWithinSec * 1000 }] : [],
    );
  }

  /** Wait for the deferred units, each within its contract's deadline. */
  async waitForDeferredUnits(): Promise<void> {
    for (const d of this.deferredUnits()) await this.waitForUnit(d.unit, d.withinMs);
  }

  /** Wait until the node is ready (SSH, system running, its units active; or its console marker). */
  waitReady(timeoutMs: number, signal?: AbortSignal): Promise<number> {
    return waitForNode(this, timeoutMs, signal);
  }

  /** Boot a stopped node again on its existing disk and wait until it is ready. */
  async start(timeoutMs = 600_000): Promise<void> {
    if (!(await this.running())) {
      const rec = await this.record();
      const images = await imagesById(this.cluster.profile, this.cluster.paths, rec.image); // the build its disk sits on
      await this.launch({ images, accel: rec.accel });
    }
    await this.waitReady(timeoutMs);
  }

  /** Pull the plug (QMP `quit`): no guest shutdown, the disk keeps what it had. */
  async crash(): Promise<void> {
    const pid = await this.pid();
    if (!pid) throw new CheckFailed(`${this.name}: cannot cut power, it is not running`);
    this.cluster.pool.drop(this.name);
    const qmp = await Qmp.connect(this.files.qmp);
    await qmp.execute('quit').catch(() => undefined); // QEMU may close before it replies
    qmp.close();
    if (!(await waitPidExit(pid, 10_000))) throw new CheckFailed(`${this.name}: qemu pid ${pid} still alive 10 s after QMP quit`);
  }

  /**
   * Stop by recorded pid: QMP system_powerdown (guests with a disk), then SIGTERM, then SIGKILL.
   * `powerdownMs` 0: a guest about to be thrown away (clean, the end of a fresh- run) is signalled at once.
   */
  async shutdown(powerdownMs = 45_000): Promise<StopMethod> {
    this.cluster.pool.drop(this.name);
    const pid = await this.pid();
    let method: StopMethod = 'not running';
    if (pid) {
      // A diskless guest (kernel + initramfs) has nothing to flush and often no ACPI handler: signal it.
      const exited = powerdownMs > 0 && existsSync(this.files.disk) && (await powerdown(this.files.qmp, pid, powerdownMs));
      method = exited ? 'powerdown' : (await terminate(pid, 5000)) === 'kill' ? 'kill' : 'term';
    }
    await fs.rm(this.files.pidfile, { force: true });
    await fs.rm(this.files.qmp, { force: true });
    return method;
  }
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
