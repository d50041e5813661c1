import type { Node } from '../../cluster/node.js';
import { CheckFailed } from '../../core/errors.js';
import { StopWaiting, waitFor } from '../../core/retry.js';
import type { ChainfireClient, RangeAnswer } from '../../services/chainfire.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';

/** Where durability-proof keeps what it backs up on a node (one dir per run, removed after). */
export const BACKUP_DIR = '/var/lib/ultracloud-backup';
/** The restored copy listens here, on the node's loopback only, beside the live member. */
const RESTORE_CLIENT = 2479;
const RESTORE_PEER = 2480;
const RESTORE_UNIT = 'ultracloud-chainfire-restore.service';
const MARKERS = 16;

/** Keys and values that differ between the live store at the snapshot's revision and the restored copy (leased keys aside). */
export function differences(live: RangeAnswer, restored: RangeAnswer): string[] {
  const want = new Map(live.kvs.filter((k) => !k.leased).map((k) => [k.key, k]));
  const got = new Map(restored.kvs.filter((k) => !k.leased).map((k) => [k.key, k]));
  const out: string[] = [];
  for (const [key, k] of want) {
    const r = got.get(key);
    if (!r) out.push(`${key}: missing from the restored copy`);
    else if (r.value !== k.value || r.modRevision !== k.modRevision)
      out.push(
        `${key}: restored as ${JSON.stringify(r.value.slice(0, 80))} (rev ${r.modRevision}), live ${JSON.stringify(k.value.slice(0, 80))} (rev ${k.modRevision})`,
      );
  }
  for (const key of got.keys()) if (!want.has(key)) out.push(`${key}: in the restored copy, not in the live store at that revision`);
  return out;
}

/** The restored copy: one etcd on the node's loopback, from the restored data dir, until stopped. */
async function startCopy(chainfire: ChainfireClient, node: Node, dataDir: string): Promise<string> {
  const peer = `http://127.0.0.1:${RESTORE_PEER}`;
  await node.exec(['systemctl', 'stop', RESTORE_UNIT]); // a copy a killed run left behind
  await node.succeed([
    'systemd-run',
    `--unit=${RESTORE_UNIT}`,
    '--collect',
    '-p',
    'MemoryMax=256M',
    'etcd',
    '--name=restore',
    `--data-dir=${dataDir}`,
    `--listen-client-urls=http://127.0.0.1:${RESTORE_CLIENT}`,
    `--advertise-client-urls=http://127.0.0.1:${RESTORE_CLIENT}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=restore=${peer}`,
  ]);
  const url = await node.url(RESTORE_CLIENT);
  await waitFor(`the restored chainfire copy on ${node} answers`, { timeoutMs: 60_000, intervalMs: 500 }, async () => {
    try {
      return await chainfire.range(url, '/ultracloud/durability/');
    } catch (e) {
      const [state] = Object.values(await node.unitStates([RESTORE_UNIT]));
      if (state !== 'active' && state !== 'activating') {
        const journal = await node.exec(['journalctl', '-u', RESTORE_UNIT, '-n', '15', '--no-pager', '-o', 'cat']);
        throw new StopWaiting(`${node}: the restored copy (${RESTORE_UNIT}) is ${state}: ${journal.stdout.trim().slice(-1500)}`);
      }
      throw e;
    }
  });
  return url;
}

/**
 * chainfire's backup is etcd's own: a snapshot of one member (with etcd's integrity hash),
 * restored into a fresh data dir and served by a one-member copy beside it. Every key of the
 * live store at the snapshot's revision must be in the copy with the same value and revision;
 * the run's markers must be there, and one written after the snapshot must not.
 */
export const chainfireBackupRestore: Step<ClusterEnv<'chainfire'> & { state: RunState }> = {
  name: 'chainfire-backup-restore',
  proves:
    "an etcd snapshot of a chainfire member restores into a fresh keyspace holding every key and value of the live store at the snapshot's revision (point in time: a later key is absent); a corrupted snapshot is refused by etcd's integrity check",
  needs: ['readiness'],
  run: async ({ services: { chainfire }, state }, step) => {
    const node = chainfire.nodes().at(-1)!; // not the bootstrap node: it also runs flaredb's primary and the deployer
    const dir = `${BACKUP_DIR}/${state.runId}`;
    const snapshot = `${dir}/chainfire.db`;
    const live = await chainfire.memberUrl(node);
    const prefix = `/ultracloud/durability/${state.runId}/`;
    try {
      step.phase('markers');
      for (let i = 0; i < MARKERS; i++) await chainfire.put(node, `${prefix}k${String(i).padStart(2, '0')}`, `v${i}-${state.runId}`);
      step.phase('snapshot');
      await node.succeed(['install', '-d', '-m', '0700', dir]);
      await node.succeed(['env', 'ETCDCTL_API=3', 'etcdctl', '--endpoints=http://127.0.0.1:2379', 'snapshot', 'save', snapshot], {
        timeoutMs: 120_000,
      });
      await chainfire.put(node, `${prefix}after-snapshot`, 'must not be in the restored copy');
      // A corrupted page can make bbolt panic while status walks the file, before restore's sha256 check would.
      const read = await node.exec(['env', 'ETCDCTL_API=3', 'etcdctl', 'snapshot', 'status', '-w', 'json', snapshot]);
      if (read.code !== 0) {
        const said = (read.stderr || read.stdout).split('\n').find((l) => l.trim()) ?? '';
        throw new CheckFailed(
          `${node}: the chainfire snapshot ${snapshot} cannot be read by etcdctl snapshot status (exit ${read.code}): ${said.slice(0, 300)}: the file is corrupted`,
        );
      }
      const status = JSON.parse(read.stdout) as { hash: number; revision: number; totalKey: number; totalSize: number };
      const sha256 = (await node.succeed(['sha256sum', snapshot])).split(' ')[0];
      await step.json('chainfire-snapshot.json', { node: node.name, file: snapshot, sha256, ...status });

      step.phase('restore');
      const restore = await node.exec(
        ['env', 'ETCDCTL_API=3', 'etcdctl', 'snapshot', 'restore', snapshot, `--data-dir=${dir}/restored`, '--name=restore'].concat(
          `--initial-cluster=restore=http://127.0.0.1:${RESTORE_PEER}`,
          `--initial-advertise-peer-urls=http://127.0.0.1:${RESTORE_PEER}`,
        ),
        { timeoutMs: 120_000 },
      );
      if (restore.code !== 0) {
        // etcdctl logs its progress as JSON lines; what went wrong is in the others.
        const said = `${restore.stderr}\n${restore.stdout}`
          .split('\n')
          .filter((l) => l.trim() && !l.includes('"level":"info"'))
          .join(' ');
        throw new CheckFailed(
          `${node}: the chainfire snapshot ${snapshot} (revision ${status.revision}, sha256 ${sha256}) does not restore: ${said.slice(0, 600)}${/expected sha256/.test(said) ? ' (its integrity hash does not match its contents: the file is corrupted)' : ''}`,
        );
      }
      const copy = await startCopy(chainfire, node, `${dir}/restored`);

      step.phase('compare');
      const [then, restored] = await Promise.all([
        chainfire.range(live, '/ultracloud/', { revision: status.revision }),
        chainfire.range(copy, '/ultracloud/'),
      ]);
      const diff = differences(then, restored);
      const markers = restored.kvs.filter((k) => k.key.startsWith(prefix)).map((k) => k.key);
      await step.json('chainfire-restore-compare.json', {
        revision: status.revision,
        liveKeys: then.kvs.length,
        restoredKeys: restored.kvs.length,
        leasedKeysNotCompared: then.kvs.filter((k) => k.leased).map((k) => k.key),
        markers,
        differences: diff,
      });
      if (diff.length)
        throw new CheckFailed(
          `${node}: the copy restored from the snapshot (revision ${status.revision}) differs from the live store at that revision in ${diff.length} key(s): ${diff.slice(0, 5).join('; ')}`,
        );
      if (markers.length !== MARKERS || markers.includes(`${prefix}after-snapshot`))
        throw new CheckFailed(`${node}: the restored copy holds ${markers.length} of the run's ${MARKERS} markers: ${markers.join(', ')}`);
      const compared = then.kvs.filter((k) => !k.leased).length;
      return `snapshot of ${node} at revision ${status.revision} (${status.totalKey} keys, ${status.totalSize} bytes) restored: ${compared} keys equal, ${then.kvs.length - compared} leased keys not compared`;
    } finally {
      await node.exec(['systemctl', 'stop', RESTORE_UNIT]);
      await node.exec(['rm', '-rf', '--one-file-system', dir]);
      await node.exec(['env', 'ETCDCTL_API=3', 'etcdctl', '--endpoints=http://127.0.0.1:2379', 'del', '--prefix', prefix]);
    }
  },
};
