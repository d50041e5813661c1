import { CheckFailed, errorMessage } from '../core/errors.js';
import { FollowEnded, waitForText } from '../core/follow-file.js';
import { StopWaiting, waitFor } from '../core/retry.js';
import { shellQuote } from '../core/shell.js';
import { seconds } from '../core/time.js';
import type { Node } from './node.js';
import { HostKeyMismatch } from './ssh-pool.js';

/** Restarts of an expected unit at or above this count mean it is restart-looping (kola's rule). */
const MAX_RESTARTS = 3;

/** What a failed readiness wait shows: failed units, the journal's errors, the console's tail. */
export async function nodeDiagnostics(node: Node): Promise<string> {
  let failed: string;
  try {
    failed = (
      await node.exec('systemctl --failed --no-legend --plain; journalctl -p err -b --no-pager -n 30', { timeoutMs: 15_000 })
    ).stdout.trim();
  } catch (err) {
    failed = `(could not collect over SSH: ${errorMessage(err)})`;
  }
  return `--- systemctl --failed / journal errors (${node.name}) ---\n${failed || '(none)'}\n--- console tail (${node.files.console}) ---\n${await node.console(25)}`;
}

/** `systemctl show -p ... a b` prints one key=value block per unit, blocks separated by blank lines. */
export function parseShow(out: string): Record<string, string>[] {
  return out
    .trim()
    .split(/\n\s*\n/)
    .map((block) =>
      Object.fromEntries(
        block
          .split('\n')
          .filter((l) => l.includes('='))
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      ),
    );
}

/** Units named in `systemctl list-jobs --no-legend --plain` (columns: JOB UNIT TYPE STATE). */
export function unitsWithJobs(out: string): Set<string> {
  return new Set(
    out
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[1])
      .filter((u): u is string => Boolean(u)),
  );
}

export interface UnitsSnapshot {
  system: string;
  units: Record<string, { load: string; active: string; sub: string; restarts: number; job: boolean }>;
}

/**
 * One look at the node: the system state (after waiting up to 3 s in the guest for boot to
 * settle, so booting nodes are not polled from here), every unit's state and whether a job is
 * queued for it.
 */
export async function unitsSnapshot(node: Node, units: readonly string[]): Promise<UnitsSnapshot> {
  const q = units.map(shellQuote).join(' ');
  const script = `timeout 3 systemctl is-system-running --wait >/dev/null 2>&1; systemctl is-system-running; echo '#'; systemctl show -p Id,LoadState,ActiveState,SubState,NRestarts ${q}; echo '#'; systemctl list-jobs --no-legend --plain`;
  const r = await node.exec(script, { timeoutMs: 30_000 });
  const [sys = '', show = '', jobs = ''] = r.stdout.split('#\n');
  const byId = new Map(parseShow(show).map((p) => [p.Id, p]));
  const queued = unitsWithJobs(jobs);
  return {
    system: sys.trim(),
    units: Object.fromEntries(
      units.map((u) => {
        const p = byId.get(u) ?? {};
        return [
          u,
          {
            load: p.LoadState ?? 'unknown',
            active: p.ActiveState ?? 'unknown',
            sub: p.SubState ?? '',
            restarts: Number(p.NRestarts ?? 0),
            job: queued.has(u),
          },
        ];
      }),
    ),
  };
}

/**
 * kola's readiness: the system finished booting with no failed units, and every expected unit
 * is active and not restart-looping. Fails at once (not at the deadline) when the answer is
 * known: a unit masked, missing, failed, looping, or inactive with no job queued once the
 * system runs (someone stopped it: nothing will start it again).
 */
export function judgeUnits(node: string, s: UnitsSnapshot): 'ready' | string {
  const entries = Object.entries(s.units);
  const pick = (f: (u: UnitsSnapshot['units'][string]) => boolean) => entries.filter(([, u]) => f(u));
  const unusable = pick((u) => u.load === 'masked' || u.load === 'not-found');
  if (unusable.length)
    throw new StopWaiting(`${node}: expected unit(s) cannot start: ${unusable.map(([n, u]) => `${n} is ${u.load}`).join(', ')}`);
  const failed = pick((u) => u.active === 'failed');
  if (failed.length) throw new StopWaiting(`${node}: unit(s) failed: ${failed.map(([n]) => n).join(', ')}`);
  const looping = pick((u) => u.restarts >= MAX_RESTARTS);
  if (looping.length)
    throw new StopWaiting(`${node}: unit(s) restart-looping: ${looping.map(([n, u]) => `${n} restarted ${u.restarts} times`).join(', ')}`);
  if (s.system === 'degraded' || s.system === 'maintenance') throw new StopWaiting(`${node}: system is ${s.system}`);
  const inactive = pick((u) => u.active !== 'active');
  if (s.system === 'running') {
    const dead = inactive.filter(([, u]) => u.active === 'inactive' && !u.job);
    if (dead.length)
      throw new StopWaiting(
        `${node}: unit(s) stopped with no start job queued: ${dead.map(([n, u]) => `${n} is ${u.active} (${u.sub})`).join(', ')}`,
      );
    if (inactive.length === 0) return 'ready';
  }
  return `system ${s.system}; not yet active: ${inactive.map(([n, u]) => `${n}=${u.active}`).join(', ') || '(none)'}`;
}

/** SSH answers: retried until the deadline, failing at once if the guest's QEMU exits or its host key changed. */
export async function waitForSsh(node: Node, deadline: number, signal?: AbortSignal): Promise<void> {
  const t = await node.target();
  await waitFor(
    `${node.name}: SSH on 127.0.0.1:${t.port}`,
    {
      timeoutMs: Math.max(deadline - Date.now(), 1),
      intervalMs: 500,
      maxIntervalMs: 2000,
      diagnostics: async () => `--- console tail ---\n${await node.console()}`,
      progress: { log: node.log },
      signal,
    },
    async () => {
      if (!(await node.running())) throw new StopWaiting(`${node.name}: qemu exited while waiting for SSH`);
      try {
        await node.exec('true', { timeoutMs: 10_000 });
      } catch (err) {
        if (err instanceof HostKeyMismatch) throw new StopWaiting(err.message);
        throw err;
      }
    },
  );
}

export async function waitForUnits(node: Node, deadline: number, units = node.units(), signal?: AbortSignal): Promise<void> {
  await waitFor(
    `${node.name}: system running with ${units.length} expected unit(s) active`,
    {
      timeoutMs: Math.max(deadline - Date.now(), 1),
      intervalMs: 500,
      maxIntervalMs: 1000,
      diagnostics: () => nodeDiagnostics(node),
      progress: { log: node.log },
      signal,
    },
    async () => {
      if (!(await node.running())) throw new StopWaiting(`${node.name}: qemu exited while waiting for its units`);
      const verdict = judgeUnits(node.name, await unitsSnapshot(node, units));
      if (verdict !== 'ready') throw new CheckFailed(verdict);
    },
  );
}

/** Readiness for guests without SSH (kernel + initramfs fixtures): their marker on the console. */
export async function waitForConsoleMarker(node: Node, marker: string, deadline: number): Promise<void> {
  const file = node.files.console;
  const { consoleOffset } = await node.record();
  try {
    await waitForText(file, marker, {
      offset: consoleOffset,
      deadline,
      alive: () => node.running(),
      what: `${node.name}: console marker "${marker}"`,
    });
  } catch (err) {
    if (!(err instanceof FollowEnded)) throw err;
    throw new CheckFailed(`${err.message}\n--- console tail (${file}) ---\n${await node.console(25)}`);
  }
}

/** `signal` calls the wait off (a sibling node already failed); console markers are only waited for by deadline. */
export async function waitForNode(node: Node, timeoutMs: number, signal?: AbortSignal): Promise<number> {
  const t0 = Date.now();
  const deadline = t0 + timeoutMs;
  const { log } = node;
  const marker = node.marker();
  if (marker) {
    await waitForConsoleMarker(node, marker, deadline);
    log.info({ node: node.name }, `ready: console marker "${marker}" after ${seconds(Date.now() - t0)}`);
    return Date.now() - t0;
  }
  await waitForSsh(node, deadline, signal);
  const sshAt = Date.now() - t0;
  await waitForUnits(node, deadline, node.units(), signal);
  log.info(
    { node: node.name },
    `ready: ssh after ${seconds(sshAt)}, units after ${seconds(Date.now() - t0)} (${node.units().length} expected units active)`,
  );
  return Date.now() - t0;
}
