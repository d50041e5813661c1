import pRetry from 'p-retry';
import { readinessMarker } from '../config/profile.js';
import { CheckFailed, errorMessage } from '../core/errors.js';
import { seconds } from '../core/time.js';
import { FollowEnded, waitForText } from '../probes/console-follow.js';
import type { Cluster } from './cluster.js';
import { consoleTail } from './console.js';
import { HostKeyMismatch } from './ssh-pool.js';

/** Restarts of an expected unit at or above this count mean it is restart-looping (kola's rule). */
const MAX_RESTARTS = 3;

async function failWithDiagnostics(cluster: Cluster, node: string, what: string): Promise<never> {
  let failed = '';
  try {
    failed = (
      await cluster.exec(node, 'systemctl --failed --no-legend --plain; journalctl -p err -b --no-pager -n 30', { timeoutMs: 15000 })
    ).stdout.trim();
  } catch (err) {
    failed = `(could not collect: ${errorMessage(err)})`;
  }
  const tail = await consoleTail(cluster.files(node).console, 25);
  throw new CheckFailed(
    `${node}: ${what}\n--- systemctl --failed / journal errors ---\n${failed || '(none)'}\n--- console tail (${cluster.files(node).console}) ---\n${tail}`,
  );
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

/** SSH answers: retried until the deadline, failing at once if the guest's QEMU has exited. */
export async function waitForSsh(cluster: Cluster, node: string, deadline: number): Promise<void> {
  const t = await cluster.target(node);
  await pRetry(
    async () => {
      if (!(await cluster.pid(node)))
        throw new CheckFailed(
          `${node}: qemu exited while waiting for SSH\n--- console tail ---\n${await consoleTail(cluster.files(node).console)}`,
        );
      await cluster.pool.client(t, 10000);
    },
    {
      retries: 10_000,
      minTimeout: 500,
      maxTimeout: 2000,
      factor: 1.3,
      shouldRetry: ({ error }) => !(error instanceof CheckFailed || error instanceof HostKeyMismatch) && Date.now() < deadline,
    },
  ).catch(async (err: unknown) => {
    if (err instanceof CheckFailed || err instanceof HostKeyMismatch) throw err;
    throw new CheckFailed(
      `${node}: SSH on 127.0.0.1:${t.port} did not answer within the deadline (last: ${errorMessage(err)})\n--- console tail ---\n${await consoleTail(cluster.files(node).console)}`,
    );
  });
}

/**
 * kola's readiness: the system finished booting with no failed units, and every unit the
 * profile expects is active and not restart-looping. `failed` anywhere fails at once.
 */
export async function waitForUnits(cluster: Cluster, node: string, deadline: number): Promise<void> {
  const units = cluster.units(node);
  const q = units.map((u) => `'${u}'`).join(' ');
  const script = `systemctl is-system-running; echo '#'; systemctl show -p Id,LoadState,ActiveState,NRestarts ${q}`;
  let last = '';
  for (;;) {
    const r = await cluster.exec(node, script, { timeoutMs: 30000 });
    const [sys = '', show = ''] = r.stdout.split('#\n');
    const system = sys.trim();
    const byId = new Map(parseShow(show).map((p) => [p.Id, p]));
    const stateOf = (u: string) => byId.get(u) ?? {};
    const unusable = units.filter((u) => ['masked', 'not-found'].includes(stateOf(u).LoadState ?? ''));
    if (unusable.length)
      await failWithDiagnostics(
        cluster,
        node,
        `expected unit(s) cannot start: ${unusable.map((u) => `${u} is ${stateOf(u).LoadState}`).join(', ')}`,
      );
    const failedUnits = units.filter((u) => stateOf(u).ActiveState === 'failed');
    if (failedUnits.length) await failWithDiagnostics(cluster, node, `unit(s) failed: ${failedUnits.join(', ')}`);
    const looping = units.filter((u) => Number(stateOf(u).NRestarts ?? 0) >= MAX_RESTARTS);
    if (looping.length)
      await failWithDiagnostics(
        cluster,
        node,
        `unit(s) restart-looping: ${looping.map((u) => `${u} restarted ${stateOf(u).NRestarts} times`).join(', ')}`,
      );
    if (system === 'degraded' || system === 'maintenance') await failWithDiagnostics(cluster, node, `system is ${system}`);
    const inactive = units.filter((u) => stateOf(u).ActiveState !== 'active');
    if (system === 'running' && inactive.length === 0) return;
    last = `system ${system}; not yet active: ${inactive.map((u) => `${u}=${stateOf(u).ActiveState}`).join(', ') || '(none)'}`;
    if (Date.now() > deadline) await failWithDiagnostics(cluster, node, `not ready by the deadline: ${last}`);
    // While booting, block in the guest until boot settles instead of polling from here; once the
    // system runs, a unit still activating (etcd awaiting quorum) has no such event: check each second.
    await cluster.exec(node, system === 'running' ? 'sleep 1' : 'timeout 5 systemctl is-system-running --wait >/dev/null 2>&1 || sleep 1', {
      timeoutMs: 15000,
    });
  }
}

/** Readiness for guests without SSH (kernel + initramfs fixtures): their marker on the console. */
export async function waitForConsoleMarker(cluster: Cluster, node: string, marker: string, deadline: number): Promise<void> {
  const file = cluster.files(node).console;
  const { consoleOffset } = await cluster.record(node);
  try {
    await waitForText(file, marker, {
      offset: consoleOffset,
      deadline,
      alive: async () => (await cluster.pid(node)) !== null,
      what: `${node}: console marker "${marker}"`,
    });
  } catch (err) {
    if (!(err instanceof FollowEnded)) throw err;
    throw new CheckFailed(`${err.message}\n--- console tail (${file}) ---\n${await consoleTail(file, 25)}`);
  }
}

export async function waitForNode(cluster: Cluster, node: string, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  const deadline = t0 + timeoutMs;
  const marker = readinessMarker(cluster.profile, node);
  if (marker) {
    await waitForConsoleMarker(cluster, node, marker, deadline);
    cluster.log.info({ node }, `ready: console marker "${marker}" after ${seconds(Date.now() - t0)}`);
    return Date.now() - t0;
  }
  await waitForSsh(cluster, node, deadline);
  const sshAt = Date.now() - t0;
  await waitForUnits(cluster, node, deadline);
  cluster.log.info(
    { node },
    `ready: ssh after ${seconds(sshAt)}, units after ${seconds(Date.now() - t0)} (${cluster.units(node).length} expected units active)`,
  );
  return Date.now() - t0;
}
