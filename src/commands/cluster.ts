import { spawn } from 'node:child_process';
import { existsSync, fstatSync } from 'node:fs';
import { buffer } from 'node:stream/consumers';
import { type Command, Option } from 'commander';
import { stopLeftoverChassis } from '../baremetal/chassis.js';
import { Cluster } from '../cluster/cluster.js';
import { checkCleanable, cleanCluster, clusterStatus, lockState, startCluster, stopCluster } from '../cluster/lifecycle.js';
import type { Node } from '../cluster/node.js';
import { ACCEL_CHOICES, positiveNumber } from '../core/cli-values.js';
import { EXIT_CHECK_FAILED, UsageError } from '../core/errors.js';
import { log } from '../core/log.js';
import { onCleanup } from '../core/shutdown.js';
import { requireTools } from '../host/tools.js';
import type { AccelChoice } from '../vm/accel-probe.js';
import { action, emit, globals, type ProfileContext, withProfile } from './context.js';
import { DEFAULT_WAVE_TIMEOUT_S } from './lanes.js';

/** `--nodes a,b`: names, checked against the profile by the command. */
const parseNodes = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

async function openCluster(ctx: ProfileContext, lane = 'cluster'): Promise<Cluster> {
  const cluster = await Cluster.open(ctx.profile, ctx.paths, log.child({ lane }));
  onCleanup('close ssh connections', () => cluster.close());
  return cluster;
}

/** A node of the profile that is running (for ssh and logs). */
async function runningNode(cluster: Cluster, name: string): Promise<Node> {
  const node = cluster.node(name);
  if (!(await node.running())) throw new UsageError(`${name} is not running (ultracloud status)`);
  return node;
}

export function registerCluster(program: Command): void {
  program
    .command('start')
    .description("boot the profile's nodes as QEMU guests, wave by wave, and wait for SSH and their units")
    .option('--nodes <a,b>', 'only these nodes (comma-separated)', parseNodes)
    .addOption(
      new Option('--accel <mode>', 'accelerator: auto = kvm when the doctor probe passed, else tcg').choices(ACCEL_CHOICES).default('auto'),
    )
    .option('--timeout <seconds>', 'per boot wave', positiveNumber, DEFAULT_WAVE_TIMEOUT_S)
    .option('--keep-on-failure', 'leave guests running when readiness fails (for debugging)')
    .action(
      action(async (opts: { nodes?: string[]; accel: AccelChoice; timeout: number; keepOnFailure?: boolean }, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        if (opts.nodes?.length === 0) throw new UsageError('--nodes names no node (give a comma-separated list such as node01,node02)');
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
    .description(
      'stop host forwards (serve-vm-webapp) and guests by their recorded pids (QMP powerdown, then SIGTERM, then SIGKILL), then the switch',
    )
    .option('--nodes <a,b>', 'only these nodes', parseNodes)
    .option('--timeout <seconds>', 'how long to wait for a clean powerdown', positiveNumber, 45)
    .action(
      action(async (opts: { nodes?: string[]; timeout: number }, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        if (opts.nodes?.length === 0) throw new UsageError('--nodes names no node');
        const cluster = await openCluster(ctx, 'stop');
        await lockState(cluster, 'stop');
        const r = await stopCluster(cluster, { nodes: opts.nodes, powerdownMs: opts.timeout * 1000 });
        // Bare-metal chassis a crashed baremetal-iso run left behind (not tied to a profile).
        const chassis = opts.nodes ? [] : await stopLeftoverChassis(ctx.workRoot, cluster.log);
        const lines = [
          ...Object.entries(r.forwards).map(([f, m]) => `forward ${f}: ${m}`),
          ...Object.entries(r.nodes).map(([n, m]) => `${n}: ${m}`),
          ...chassis.map((c) => `chassis ${c}: term`),
        ];
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
    .description('per node: pid alive, accel, forwarded ports, SSH reachability, expected and deferred units; host forwards')
    .action(
      action(async (_o: object, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        const cluster = await openCluster(ctx, 'status');
        const s = await clusterStatus(cluster);
        const text = s.nodes.map((n) => {
          if (!n.running) return `${n.name}: stopped`;
          if (n.marker !== undefined)
            return `${n.name}: pid ${n.pid} ${n.accel} ${n.ip} console marker ${n.marker ? 'seen' : 'not seen yet'}`;
          const states = (units: Record<string, string>) =>
            Object.entries(units)
              .map(([u, st]) => (st === 'active' ? u : `${u}=${st}`))
              .join(' ');
          const ports = Object.entries(n.ports)
            .map(([k, v]) => `${k}=127.0.0.1:${v}`)
            .join(' ');
          const deferred = n.deferred ? `\n  deferred (started after boot): ${states(n.deferred)}` : '';
          return `${n.name}: pid ${n.pid} ${n.accel} ${n.ip} ssh ${n.ssh}${n.error ? ` (${n.error})` : ''}\n  ports: ${ports}\n  units: ${states(n.units)}${deferred}`;
        });
        emit(
          ctx,
          { profile: ctx.profile.name, state: ctx.paths.state, ...s },
          [
            ...text,
            `switch: ${s.switchPid ? `pid ${s.switchPid}` : 'not running'}`,
            ...s.forwards.map(
              (f) =>
                `forward ${f.name}: ${f.running ? `pid ${f.pid} ${f.url} -> ${f.target.host}:${f.target.port} via ${f.via}` : 'not running (ssh exited; ultracloud stop removes it)'}`,
            ),
          ].join('\n'),
        );
      }),
    );

  program
    .command('ssh')
    .description('open a shell on a node, or run a command there and return its exit code')
    .argument('<node>')
    .argument('[command...]', "command to run (after --); as with ssh, the words are joined and run by the node's shell")
    .option('--stdin', "send this command's standard input to the remote command (a redirected file is always sent)")
    .action(
      action(async (name: string, command: string[], o: { stdin?: boolean }, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        const cluster = await openCluster(ctx, 'ssh');
        const node = await runningNode(cluster, name);
        if (command.length > 0) {
          // `< file` is sent as ssh would; a pipe only with --stdin (an idle inherited pipe would block forever).
          const stdin = o.stdin || fstatSync(0).isFile() ? await buffer(process.stdin) : undefined;
          const r = await node.exec(command.join(' '), { timeoutMs: 0, ...(stdin !== undefined ? { stdin } : {}) });
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
      action(async (name: string, opts: { journal?: boolean; lines: number }, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        const cluster = await openCluster(ctx, 'logs');
        const node = cluster.node(name);
        if (opts.journal) {
          process.stdout.write(await (await runningNode(cluster, name)).journal(opts.lines));
          return;
        }
        if (!existsSync(node.files.console)) throw new UsageError(`${name} has no console log yet (${node.files.console})`);
        process.stdout.write(`${await node.console(opts.lines)}\n`);
      }),
    );

  program
    .command('clean')
    .description('stop everything, then remove runtime state (disks, sockets, consoles) inside the work root')
    .action(
      action(async (_o: object, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        await checkCleanable(ctx.paths); // refuse before taking a lock or stopping anything
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
async function interactiveSsh(cluster: Cluster, node: Node): Promise<number> {
  await requireTools('ssh');
  const argv = await node.sshArgv();
  cluster.close();
  const child = spawn('ssh', argv, { stdio: 'inherit' });
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? EXIT_CHECK_FAILED)));
}
