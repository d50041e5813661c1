import { dumpCorrupted, restoreDropsRow, snapshotCorrupted } from '../faults/backup-corruption.js';
import { deployerStateLost } from '../faults/deployer-state-lost.js';
import { objectReplicaCorrupted } from '../faults/object-replica-corrupted.js';
import { volumeCorruptedAtBoot } from '../faults/volume-corrupted-at-boot.js';
import { LIGHTNINGSTOR } from '../services/lightningstor.js';
import { type ClusterEnv, clusterLane } from './lane.js';
import { BACKUP_DIR, chainfireBackupRestore } from './steps/chainfire-backup-restore.js';
import { coronafsLocalOutage } from './steps/coronafs-local-outage.js';
import { deployerPreregistration } from './steps/deployer-preregistration.js';
import { DUMP_FILE, flaredbDumpRestore, RESTORE_DB_PREFIX, ROWS_TABLE } from './steps/flaredb-dump-restore.js';
import { lightningstorWorkerOutage } from './steps/lightningstor-worker-outage.js';
import { readiness } from './steps/readiness.js';
import { newRunState, type RunState } from './steps/state.js';

const SERVICES = ['chainfire', 'flaredb', 'deployer', 'iam', 'coronafs', 'coronafs-agent', ...LIGHTNINGSTOR] as const;

type DurabilityCtx = ClusterEnv<(typeof SERVICES)[number]> & { state: RunState };

/**
 * The durability lane: backups of the stores restored and compared, the deployer's state across
 * a restart, and the storage services' data across a worker's power cut, on the running cluster
 * (`fresh-durability-proof` boots one first).
 */
export const durabilityProof = clusterLane<DurabilityCtx>()({
  name: 'durability-proof',
  description:
    "chainfire's etcd snapshot restored into a fresh keyspace and compared, flaredb's pg_dump restored into a fresh database and compared row for row, the deployer's pre-registration request as the backup artifact, kept across a deployer.service restart and replayed idempotently, an object read whole from lightningstor with node05 powered off, a node-local coronafs volume intact across node04's power cut",
  kind: 'cluster',
  services: SERVICES,
  context: (env) => ({ ...env, state: newRunState('durability-proof') }),
  steps: [readiness, chainfireBackupRestore, flaredbDumpRestore, deployerPreregistration, lightningstorWorkerOutage, coronafsLocalOutage],
  controls: {
    'chainfire-snapshot-corrupted': {
      description: "invert one byte in the middle of every chainfire snapshot saved on the lane's member (etcdctl wrapped)",
      breaks: 'chainfire-backup-restore',
      fault: ({ services: { chainfire } }) => snapshotCorrupted(chainfire.nodes().at(-1)!),
    },
    'flaredb-restore-drops-row': {
      description: 'delete one row of the restored table in every restore database, as it appears',
      breaks: 'flaredb-dump-restore',
      fault: ({ services: { flaredb } }) => restoreDropsRow(flaredb.primary(), RESTORE_DB_PREFIX, ROWS_TABLE),
    },
    'flaredb-dump-corrupted': {
      description:
        'invert one byte in the middle of every flaredb dump on the primary as it is written (a nemesis watching the backup dir)',
      breaks: 'flaredb-dump-restore',
      fault: ({ services: { flaredb } }) => dumpCorrupted(flaredb.primary(), BACKUP_DIR, DUMP_FILE),
    },
    'object-replica-corrupted': {
      description: 'invert one byte in the middle of every object file written on node04, the replica that serves while node05 is down',
      breaks: 'lightningstor-worker-outage',
      fault: ({ services }) => objectReplicaCorrupted(services['lightningstor-object'].nodes()[0]!),
    },
    'coronafs-volume-corrupted-at-boot': {
      description: 'zero the first byte of every local coronafs volume on node04 when it boots again, before coronafs-agent starts',
      breaks: 'coronafs-local-outage',
      fault: ({ services: { 'coronafs-agent': agents } }) => volumeCorruptedAtBoot(agents.nodes()[0]!, agents.unit),
    },
    'deployer-state-lost': {
      description: "remove the deployer's state file before every start of deployer.service",
      breaks: 'deployer-preregistration',
      fault: ({ services: { deployer } }) => deployerStateLost(deployer.node(), deployer.unit, deployer.stateFile),
    },
  },
});
