import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { stopLeftoverChassis } from '../baremetal/chassis.js';
import { Cluster } from '../cluster/cluster.js';
import { consoleTail } from '../cluster/console.js';
import { cleanCluster, clusterStatus, lockState, startCluster, stopCluster } from '../cluster/lifecycle.js';
import { EXIT_CHECK_FAILED, UsageError } from '../core/errors.js';
import { log } from '../core/log.js';
import { onCleanup } from '../core/shutdown.js';
import { requireTools } from '../host/tools.js';
import { action, emit, globals, type ProfileContext, withProfile } from './context.js';

export const accelOption = () =>
  new Option('--accel <mode>', 'accelerator: auto = kvm when the doctor probe passed, else tcg')
    .choices(['auto', 'kvm', 'tcg'])
    .default('auto');
export const parseNodes = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
/** Option parser for counts and seconds: commander reports the error and exits 2. */
export const positiveNumber = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
};
/** Under TCG a wave of three guests needs ~90 s to reach SSH; allow ample slack for loaded CI hosts. */
export const DEFAULT_WAVE_TIMEOUT_S = 600;

export async function openCluster(ctx: ProfileContext, lane = 'cluster'): Promise<Cluster> {
  const cluster = await Cluster.open(ctx.profile, ctx.paths, log.child({ lane }));
  onCleanup('close ssh connections', () => cluster.close());
  return cluster;
}

export function registerCluster(program: Command): void {
  program
    .command('start')
    .description("boot the profile's nodes as QEMU guests, wave by wave, and wait for SSH and their units")
    .option('--nodes <a,b>', 'only these nodes (comma-separated)', parseNodes)
    .addOption(accelOption())
    .option('--timeout <seconds>', 'per boot wave', positiveNumber, DEFAULT_WAVE_TIMEOUT_S)
    .option('--keep-on-failure', 'leave guests running when readiness fails (for debugging)')
    .action(
      action(async (opts: { nodes?: string[]; accel: 'auto' | 'kvm' | 'tcg'; timeout: number; keepOnFailure?: boolean }, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        const cluster = await openCluster(ctx, 'start');
        await lockState(cluster, 'start');
        const r = await startCluster(cluster, {
          nodes: opts.nodes,
          accel: opts.accel,
          waveTimeoutMs: opts.timeout * 1000,
          keepOnFailure: opts.keepOnFailure,
        });
        emit(ctx, r, `started ${r.started.length} node(s) (${r.accel}); all ready: ${r.waves.flat().join(', ')}`);
      }),
    );

  program
    .command('stop')
    .description('stop guests by their recorded pids (QMP powerdown, then SIGTERM, then SIGKILL), then the switch')
    .option('--nodes <a,b>', 'only these nodes', parseNodes)
    .option('--timeout <seconds>', 'how long to wait for a clean powerdown', positiveNumber, 45)
    .action(
      action(async (opts: { nodes?: string[]; timeout: number }, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        const cluster = await openCluster(ctx, 'stop');
        await lockState(cluster, 'stop');
        const r = await stopCluster(cluster, { nodes: opts.nodes, powerdownMs: opts.timeout * 1000 });
        // Bare-metal chassis a crashed baremetal-iso run left behind (not tied to a profile).
        const chassis = opts.nodes ? [] : await stopLeftoverChassis(ctx.workRoot, cluster.log);
        const lines = [...Object.entries(r.nodes).map(([n, m]) => `${n}: ${m}`), ...chassis.map((c) => `chassis ${c}: term`)];
        emit(
          ctx,
          { ...r, chassis },
          [...lines, r.switchStopped ? 'switch: stopped' : 'switch: not running', ...(lines.length ? [] : ['nothing was running'])].join(
            '\n',
          ),
        );
      }),
    );

  program
    .command('status')
    .description('per node: pid alive, accel, forwarded ports, SSH reachability, expected units')
    .action(
      action(async (_o: object, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        const cluster = await openCluster(ctx, 'status');
        const s = await clusterStatus(cluster);
        const text = s.nodes.map((n) => {
          if (!n.running) return `${n.name}: stopped`;
          if (n.marker !== undefined)
            return `${n.name}: pid ${n.pid} ${n.accel} ${n.ip} console marker ${n.marker ? 'seen' : 'not seen yet'}`;
          const units = Object.entries(n.units)
            .map(([u, st]) => (st === 'active' ? u : `${u}=${st}`))
            .join(' ');
          const ports = Object.entries(n.ports)
            .map(([k, v]) => `${k}=127.0.0.1:${v}`)
            .join(' ');
          return `${n.name}: pid ${n.pid} ${n.accel} ${n.ip} ssh ${n.ssh}${n.error ? ` (${n.error})` : ''}\n  ports: ${ports}\n  units: ${units}`;
        });
        emit(
          ctx,
          { profile: ctx.profile.name, state: ctx.paths.state, ...s },
          [...text, `switch: ${s.switchPid ? `pid ${s.switchPid}` : 'not running'}`].join('\n'),
        );
      }),
    );

  program
    .command('ssh')
    .description('open a shell on a node, or run a command there and return its exit code')
    .argument('<node>')
    .argument('[command...]', 'command to run (after --)')
    .action(
      action(async (node: string, command: string[], _o: object, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        const cluster = await openCluster(ctx, 'ssh');
        cluster.spec(node);
        if (!(await cluster.pid(node))) throw new UsageError(`${node} is not running (ultracloud status)`);
        if (command.length > 0) {
          const r = await cluster.exec(node, command.join(' '), { timeoutMs: 0 });
          process.stdout.write(r.stdout);
          process.stderr.write(r.stderr);
          return r.code;
        }
        return interactiveSsh(cluster, node);
      }),
    );

  program
    .command('logs')
    .description("a node's serial console (vm.log), or its journal with --journal")
    .argument('<node>')
    .option('--journal', 'the systemd journal of the current boot, over SSH')
    .option('-n, --lines <n>', 'last N lines', positiveNumber, 200)
    .action(
      action(async (node: string, opts: { journal?: boolean; lines: number }, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        const cluster = await openCluster(ctx, 'logs');
        cluster.spec(node);
        if (opts.journal) {
          process.stdout.write(await cluster.sh(node, `journalctl -b --no-pager -n ${Math.floor(opts.lines)}`));
          return;
        }
        const file = cluster.files(node).console;
        if (!existsSync(file)) throw new UsageError(`${node} has no console log yet (${file})`);
        process.stdout.write(`${await consoleTail(file, opts.lines)}\n`);
      }),
    );

  program
    .command('clean')
    .description('stop everything, then remove runtime state (disks, sockets, consoles) inside the work root')
    .action(
      action(async (_o: object, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        const cluster = await openCluster(ctx, 'clean');
        await lockState(cluster, 'clean');
        const removed = await cleanCluster(cluster);
        const chassis = await stopLeftoverChassis(ctx.workRoot, cluster.log, { remove: true });
        const stoppedChassis = chassis.length ? `; stopped chassis ${chassis.join(', ')}` : '';
        emit(ctx, { removed, chassis }, `${removed.length ? `removed ${removed.join(', ')}` : 'nothing removed'}${stoppedChassis}`);
      }),
    );
}

/** The system ssh client for a real TTY, pinned to the host key the harness recorded. */
async function interactiveSsh(cluster: Cluster, node: string): Promise<number> {
  await requireTools('ssh');
  const t = await cluster.target(node);
  await cluster.pool.client(t, 10000); // pins the host key on first contact
  const f = cluster.files(node);
  await fs.writeFile(f.knownHosts, `[127.0.0.1]:${t.port} ${(await fs.readFile(f.hostKey, 'utf8')).trim()}\n`);
  cluster.close();
  const child = spawn(
    'ssh',
    [
      '-i',
      cluster.key.privateKey,
      '-p',
      String(t.port),
      '-o',
      `UserKnownHostsFile=${f.knownHosts}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'IdentitiesOnly=yes',
      'root@127.0.0.1',
    ],
    { stdio: 'inherit' },
  );
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? EXIT_CHECK_FAILED)));
}
