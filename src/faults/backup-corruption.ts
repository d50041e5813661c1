import type { Node } from '../cluster/node.js';
import type { Fault } from './fault.js';

const DUMP_NEMESIS = 'ultracloud-nemesis-dump-corrupted.service';

const WRAPPER = '/usr/local/bin/etcdctl';
const MARK = 'ultracloud fault snapshot-corrupted';
/** etcdctl as it is, and then one byte in the middle of the snapshot `snapshot save` wrote inverted. */
const WRAPPED = `#!/bin/sh
# ${MARK}: the real etcdctl, then one byte of a saved snapshot inverted
/usr/bin/etcdctl "$@" || exit $?
prev=""; file=""
for a in "$@"; do [ "$prev" = save ] && file="$a"; prev="$a"; done
if [ -n "$file" ] && [ -f "$file" ]; then
  at=$(( $(stat -c %s "$file") / 2 ))
  b=$(dd if="$file" bs=1 skip="$at" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
  printf "$(printf '\\\\%03o' $((b ^ 255)))" | dd of="$file" bs=1 seek="$at" count=1 conv=notrunc 2>/dev/null
  echo "${MARK}: inverted the byte at $at of $file" >&2
fi
`;

/**
 * Bit rot in a backup, deterministically: an etcdctl earlier in PATH runs the real one and then
 * inverts one byte in the middle of every snapshot it saved, as a failing medium would. Heal:
 * the wrapper removed (only if it is ours).
 */
export function snapshotCorrupted(node: Node): Fault {
  return {
    kind: 'snapshot-corrupted',
    name: `snapshot-corrupted: every chainfire snapshot saved on ${node} has one byte inverted`,
    targets: [node.name],
    invoke: async () => {
      if ((await node.exec(['test', '-e', WRAPPER])).code === 0 && (await node.exec(['grep', '-q', MARK, WRAPPER])).code !== 0)
        throw new Error(`${node}: ${WRAPPER} exists and is not this fault's`);
      await node.succeed(['tee', WRAPPER], { stdin: WRAPPED, via: 'session' });
      await node.succeed(['chmod', '0755', WRAPPER]);
    },
    heal: async () => {
      if ((await node.exec(['grep', '-q', MARK, WRAPPER])).code === 0) await node.succeed(['rm', '-f', WRAPPER]);
    },
  };
}

/**
 * A restore that loses a row: an event trigger in template1 (so in every database created
 * meanwhile) arms, in a restore database (`dbPrefix`...), a trigger on `table` as soon as the
 * restore creates it, which drops the row with id 1 as it is loaded. Heal: both removed from
 * template1 (a restore database made meanwhile is the lane's to drop).
 */
export function restoreDropsRow(node: Node, dbPrefix: string, table: string): Fault {
  const psql = (sql: string) =>
    node.succeed(['psql', '-h', '127.0.0.1', '-U', 'postgres', '-d', 'template1', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
  return {
    kind: 'restore-drops-row',
    name: `restore-drops-row: every ${dbPrefix}* database made on ${node} loses the ${table} row with id 1 as it is restored`,
    targets: [node.name],
    invoke: async () => {
      await psql(`create or replace function ultracloud_nemesis_drop_row() returns trigger language plpgsql as $f$
        begin if new.id = 1 then return null; end if; return new; end $f$`);
      await psql(`create or replace function ultracloud_nemesis_arm() returns event_trigger language plpgsql as $f$
        begin
          if current_database() like '${dbPrefix}%' and to_regclass('public.${table}') is not null
             and not exists (select 1 from pg_trigger where tgname = 'ultracloud_nemesis') then
            create trigger ultracloud_nemesis before insert on public.${table} for each row execute function public.ultracloud_nemesis_drop_row();
          end if;
        end $f$`);
      await psql('drop event trigger if exists ultracloud_nemesis_arm');
      await psql('create event trigger ultracloud_nemesis_arm on ddl_command_end execute function ultracloud_nemesis_arm()');
    },
    heal: async () => {
      await psql('drop event trigger if exists ultracloud_nemesis_arm');
      await psql('drop function if exists ultracloud_nemesis_arm(), ultracloud_nemesis_drop_row()');
    },
  };
}

/** Watches every run dir under the backup dir (inotify through fs.watch) and inverts one byte in the middle of each dump file once it is over 1 KiB. */
export const corruptDumps = (root: string, name: string) => `const fs = require('fs'), path = require('path');
const done = new Set();
const corrupt = (file) => {
  if (done.has(file)) return;
  let fd; try { fd = fs.openSync(file, 'r+'); } catch { return; }
  try {
    const size = fs.fstatSync(fd).size;
    if (size < 1024) return;
    const at = Math.floor(size / 2), b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at); b[0] ^= 0xff; fs.writeSync(fd, b, 0, 1, at);
    done.add(file);
    console.log('inverted the byte at ' + at + ' of ' + file);
  } finally { fs.closeSync(fd); }
};
const watchRun = (dir) => { try { fs.watch(dir, (_e, f) => f === ${JSON.stringify(name)} && corrupt(path.join(dir, f))); } catch {} };
fs.mkdirSync(${JSON.stringify(root)}, { recursive: true, mode: 0o700 });
for (const d of fs.readdirSync(${JSON.stringify(root)})) watchRun(path.join(${JSON.stringify(root)}, d));
fs.watch(${JSON.stringify(root)}, (_e, d) => d && watchRun(path.join(${JSON.stringify(root)}, d)));`;

/**
 * Bit rot at rest: a nemesis on `node` (a transient unit) inverts one byte in the middle of every
 * `name` written under `root` as it is written, after pg_dump's bytes were hashed on their way to
 * the file. Heal: the nemesis stopped (what it says it did is in its journal).
 */
export function dumpCorrupted(node: Node, root: string, name: string): Fault {
  return {
    kind: 'dump-corrupted',
    name: `dump-corrupted: every ${name} written under ${root} on ${node} gets one byte inverted`,
    targets: [node.name],
    invoke: async () => {
      await node.succeed(['systemd-run', `--unit=${DUMP_NEMESIS}`, 'node', '-e', corruptDumps(root, name)]);
    },
    heal: async () => {
      await node.exec(['systemctl', 'stop', DUMP_NEMESIS]);
    },
  };
}
