import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { promises as fs } from 'node:fs';
import { createServer, isIPv4 } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../core/atomic.js';
import { CheckFailed, errorMessage, UsageError } from '../core/errors.js';
import { ownedPid, terminate } from '../core/proc.js';
import { waitFor } from '../core/retry.js';
import { onCleanup } from '../core/shutdown.js';
import { tcpConnect } from '../host/tcp.js';
import { requireTools } from '../host/tools.js';
import type { Node } from './node.js';

/**
 * Host forwards: a detached system `ssh -N -L` that keeps a guest-side address (a VM on a tenant
 * network, as a node reaches it) at `127.0.0.1:<port>` on the host after the harness exits, for a
 * user's browser. Each lives in `<state>/forwards/<name>/` (its pid, its record, ssh's own log,
 * whose path in ssh's argv proves the pid is ours), so `status` lists it and `stop` ends it by pid
 * from any later process.
 */
export const ForwardRecord = z.object({
  name: z.string(),
  url: z.string(),
  listen: z.object({ host: z.literal('127.0.0.1'), port: z.number().int() }),
  via: z.string(),
  target: z.object({ host: z.string(), port: z.number().int() }),
  startedAt: z.string(),
});
export type ForwardRecord = z.infer<typeof ForwardRecord>;

export interface ForwardStatus extends ForwardRecord {
  pid: number | null;
  running: boolean;
}

const forwardsDir = (state: string) => path.join(state, 'forwards');

function forwardFiles(state: string, name: string) {
  const dir = path.join(forwardsDir(state), name);
  return { dir, pidfile: path.join(dir, 'ssh.pid'), record: path.join(dir, 'forward.json'), log: path.join(dir, 'ssh.log') };
}

/** The forward's ssh, when its pidfile names a live ssh started with this forward's log. */
const forwardPid = (state: string, name: string) => {
  const f = forwardFiles(state, name);
  return ownedPid(f.pidfile, '-E', f.log);
};

/** Every forward recorded in the state dir, with whether its ssh still runs. */
export async function listForwards(state: string): Promise<ForwardStatus[]> {
  const names = await fs.readdir(forwardsDir(state)).catch(() => [] as string[]);
  const out: ForwardStatus[] = [];
  for (const name of names.sort()) {
    const raw = await fs.readFile(forwardFiles(state, name).record, 'utf8').catch(() => null);
    const rec = raw === null ? null : ForwardRecord.safeParse(parseOrNull(raw));
    const pid = await forwardPid(state, name);
    if (rec?.success) out.push({ ...rec.data, pid, running: pid !== null });
    else if (pid !== null) out.push({ ...unrecorded(name), pid, running: true }); // killed between spawn and record
  }
  return out;
}

/** A record file cut short or corrupted reads as no record (its ssh, if alive, is still listed and stoppable). */
function parseOrNull(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

const unrecorded = (name: string): ForwardRecord => ({
  name,
  url: '',
  listen: { host: '127.0.0.1', port: 0 },
  via: '?',
  target: { host: '?', port: 0 },
  startedAt: '',
});

/** Stop a forward's ssh by pid and remove the files it had (only those); 'not running' when there was none. */
export async function stopForward(state: string, name: string): Promise<'term' | 'kill' | 'not running'> {
  const f = forwardFiles(state, name);
  const pid = await forwardPid(state, name);
  const how = pid === null ? 'not running' : await terminate(pid, 3000);
  for (const file of [f.pidfile, f.record, f.log]) await fs.rm(file, { force: true });
  await fs.rmdir(f.dir).catch(() => undefined); // absent, or holding something not ours: left as it is
  return how === 'gone' ? 'not running' : how;
}

/** Stop every forward (those through `via` nodes only, when given). */
export async function stopForwards(state: string, via?: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of await listForwards(state)) if (!via || via.includes(f.via)) out[f.name] = await stopForward(state, f.name);
  return out;
}

/** Refuse (exit 2) a listen port something else holds on 127.0.0.1; a forward of this state dir may hold it. */
export async function checkListenPort(state: string, port: number, name: string): Promise<void> {
  const mine = (await listForwards(state)).find((f) => f.running && f.listen.port === port);
  if (mine && mine.name === name) return; // replaced by the new one
  if (mine) throw new UsageError(`port ${port} on 127.0.0.1 is held by forward "${mine.name}" (${mine.url}); ultracloud stop ends it`);
  const bound = await bindOnce(port);
  if (typeof bound !== 'number')
    throw new UsageError(`port ${port} on 127.0.0.1 is busy (${bound.code}): choose another with --port, or 0 for any free one`);
}

/**
 * Bind 127.0.0.1:port and let go at once: the port bound (0: the kernel's free choice; ssh's
 * ExitOnForwardFailure catches a race), or why it could not be.
 */
async function bindOnce(port: number): Promise<number | NodeJS.ErrnoException> {
  const server = createServer();
  const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    server.once('error', resolve);
    server.listen(port, '127.0.0.1', () => resolve(null));
  });
  if (err) return err;
  const bound = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return bound;
}

async function freePort(): Promise<number> {
  const bound = await bindOnce(0);
  if (typeof bound !== 'number') throw new CheckFailed(`no free port on 127.0.0.1: ${bound.message}`);
  return bound;
}

export interface StartForward {
  name: string;
  /** The node ssh goes through; `target` is an address as that node reaches it. */
  via: Pick<Node, 'name' | 'sshArgv'>;
  target: { host: string; port: number };
  /** 0: any free port. */
  listenPort: number;
  /** Checks through the forward once it listens (e.g. an HTTP GET); its error gets ssh's log. */
  check: (url: string) => Promise<void>;
  listenWithinMs?: number;
}

/**
 * Start (or replace) a named forward, wait until ssh listens (it binds only after authenticating),
 * then run `check` through it. If ssh exits first, or the check fails, the error carries ssh's own
 * log (auth, a busy port, a refused target), and the forward is stopped: a failed start leaves
 * nothing running.
 */
export async function startForward(state: string, o: StartForward): Promise<ForwardStatus> {
  if (!isIPv4(o.target.host)) throw new UsageError(`forward ${o.name}: target ${o.target.host} is not an IPv4 address`);
  await requireTools('ssh');
  await stopForward(state, o.name);
  const f = forwardFiles(state, o.name);
  await fs.mkdir(f.dir, { recursive: true });
  const port = o.listenPort || (await freePort());
  const options = ['ExitOnForwardFailure=yes', 'ServerAliveInterval=5', 'ServerAliveCountMax=3', 'BatchMode=yes'];
  const argv = ['-N', '-T', '-E', f.log, '-L', `127.0.0.1:${port}:${o.target.host}:${o.target.port}`, ...(await o.via.sshArgv(options))];
  const child = spawn('ssh', argv, { detached: true, stdio: 'ignore' });
  const spawned = await Promise.race([once(child, 'spawn').then(() => null), once(child, 'error').then(([e]) => e as Error)]);
  if (spawned) throw new CheckFailed(`forward ${o.name}: ssh did not start: ${spawned.message}`);
  const dispose = onCleanup(`stop forward ${o.name}`, () => stopForward(state, o.name).then(() => undefined));
  const url = `http://127.0.0.1:${port}/`;
  const sshLog = async () => (await fs.readFile(f.log, 'utf8').catch(() => '')).trim() || 'nothing';
  try {
    await fs.writeFile(f.pidfile, `${child.pid}\n`);
    const record: ForwardRecord = {
      name: o.name,
      url,
      listen: { host: '127.0.0.1', port },
      via: o.via.name,
      target: o.target,
      startedAt: new Date().toISOString(),
    };
    await writeFileAtomic(f.record, `${JSON.stringify(record, null, 2)}\n`);
    const died = once(child, 'exit').then(async ([code]) => {
      throw new CheckFailed(
        `forward ${o.name}: ssh through ${o.via.name} exited ${code} before ${url} listened; ssh said: ${await sshLog()}`,
      );
    });
    died.catch(() => {}); // raced below; once it listens, its exit is status's business
    await Promise.race([listening(port, o.listenWithinMs ?? 60_000, o.name), died]);
    await o.check(url).catch(async (err: unknown) => {
      throw new CheckFailed(
        `${errorMessage(err)}\n(the forward's ssh through ${o.via.name} to ${o.target.host}:${o.target.port} said: ${await sshLog()})`,
      );
    });
    child.unref();
    return { ...record, pid: child.pid ?? null, running: true };
  } catch (err) {
    await stopForward(state, o.name);
    throw err;
  } finally {
    dispose();
  }
}

/** Until ssh accepts on the port (polled: a child's bind gives no event), or the deadline. */
function listening(port: number, withinMs: number, name: string): Promise<void> {
  return waitFor(`forward ${name}: 127.0.0.1:${port} listening`, { timeoutMs: withinMs, intervalMs: 200, maxIntervalMs: 200 }, () =>
    tcpConnect(port, 2000),
  );
}
