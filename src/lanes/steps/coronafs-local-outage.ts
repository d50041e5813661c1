import type { Node } from '../../cluster/node.js';
import { CheckFailed } from '../../core/errors.js';
import { StopWaiting, waitFor } from '../../core/retry.js';
import { powerCut } from '../../faults/power.js';
import type { Volume } from '../../services/coronafs.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';
import { laneTenants } from './tenants.js';

/** Written over NBD at 1 MiB after the seed: what a guest would have written before the failure. */
const PATTERN = { offset: 1 << 20, length: 64 << 10, byte: 0xab };

/** The volume's export: qemu-nbd serves it under the volume's id. */
const nbdUrl = (v: Volume) => `nbd://${v.host}:${v.port}/${v.id}`;

/** The bytes `qemu-io -c 'read -v ...'` printed: "00000010:  69 74 79 20 61 62 63  ity.abc" lines, the byte column ending at the two spaces before the text. */
export function qemuIoBytes(out: string): Buffer {
  const hex = out
    .split('\n')
    .map((l) => /^[0-9a-f]{8}:\s+((?:[0-9a-f]{2} )*[0-9a-f]{2}) {2}/.exec(l)?.[1])
    .filter((x): x is string => x !== undefined)
    .map((x) => x.replaceAll(' ', ''));
  return Buffer.from(hex.join(''), 'hex');
}

/** Each `read -v` of one qemu-io run, in order: its output up to the "read N/N bytes at offset X" line that ends it. */
export function qemuIoReads(out: string): Buffer[] {
  const reads: Buffer[] = [];
  let chunk: string[] = [];
  for (const line of out.split('\n')) {
    if (/^read \d+\/\d+ bytes at offset \d+/.test(line)) {
      reads.push(qemuIoBytes(chunk.join('\n')));
      chunk = [];
    } else chunk.push(line);
  }
  return reads;
}

/** Ranges (offset, length) of the volume, as another worker reads them over NBD: one qemu-io, read-only. */
async function nbdRead(reader: Node, v: Volume, ranges: [number, number][]): Promise<Buffer[]> {
  const commands = ranges.flatMap(([offset, length]) => ['-c', `read -v ${offset} ${length}`]);
  const out = await reader.succeed(['qemu-io', '-r', '-f', 'raw', ...commands, nbdUrl(v)], { timeoutMs: 30_000 });
  const reads = qemuIoReads(out);
  if (reads.length !== ranges.length)
    throw new CheckFailed(`${reader}: qemu-io answered ${reads.length} of ${ranges.length} reads of ${nbdUrl(v)}: ${out.slice(-300)}`);
  return reads;
}

/** What the volume holds, from the other worker: the seed and the pattern, and whether each is intact. */
async function contents(reader: Node, v: Volume, seed: string) {
  const [head, pattern] = (await nbdRead(reader, v, [
    [0, seed.length],
    [PATTERN.offset, 4096],
  ])) as [Buffer, Buffer];
  return { seedIntact: head.toString() === seed, patternIntact: pattern.length === 4096 && pattern.every((b) => b === PATTERN.byte) };
}

/**
 * A node-local coronafs volume across its worker's power cut: it holds its seed and what was
 * written to it over NBD; while the worker is down the API still lists it and its export is
 * unreachable; once the worker is back, coronafs-agent exports it again with both intact.
 */
export const coronafsLocalOutage: Step<ClusterEnv<'iam' | 'coronafs' | 'coronafs-agent'> & { state: RunState }> = {
  name: 'coronafs-local-outage',
  proves:
    "a node-local coronafs volume on node04 keeps its seed and the data written to it over NBD across node04's power cut: listed by the API while down (its export unreachable), exported again with both intact once node04 is back",
  needs: ['readiness'],
  run: async ({ services: { iam, coronafs, 'coronafs-agent': agents }, faults, state }, step) => {
    const [home, reader] = agents.nodes();
    if (!home || !reader) throw new CheckFailed('coronafs-local-outage needs two workers');
    const { a } = await laneTenants(iam, state.lane);
    const seed = `coronafs-durability ${state.runId}`;
    const record: Record<string, unknown> = { node: home.name, readFrom: reader.name };
    for (const v of await coronafs.volumes(a)) if (v.name.startsWith('durability-')) await coronafs.deleteVolume(a, v.id); // an interrupted run's
    const created = await coronafs.createVolume(a, {
      name: `durability-${state.runId}`,
      sizeMiB: 8,
      kind: 'local',
      node: home.name,
      seed: Buffer.from(seed).toString('base64'),
    });
    try {
      const exported = await waitFor(`volume ${created.id} exported by ${home}`, { timeoutMs: 60_000, intervalMs: 500 }, async () => {
        const v = await coronafs.volume(a, created.id);
        if (v.status.state !== 'exported') throw new CheckFailed(`volume ${v.id} is ${v.status.state}`);
        return v;
      });
      step.phase('write');
      await reader.succeed(
        ['qemu-io', '-f', 'raw', '-c', `write -P ${PATTERN.byte} ${PATTERN.offset} ${PATTERN.length}`, nbdUrl(exported)],
        { timeoutMs: 30_000 },
      );
      const before = await contents(reader, exported, seed);
      record.before = { volume: exported, ...before };
      if (!before.seedIntact || !before.patternIntact)
        throw new CheckFailed(
          `volume ${exported.id} on ${home}, read over NBD from ${reader} before any failure: seed ${before.seedIntact ? 'intact' : 'missing'}, written data ${before.patternIntact ? 'intact' : 'missing'}`,
        );

      step.phase(`power cut ${home}`);
      const cut = powerCut(home);
      await faults.invoke(cut);
      try {
        const listed = await coronafs.volume(a, created.id);
        // A powered-off host answers no SYN: the read is bounded on the node (exit 124: no answer in 10 s).
        const during = await reader.exec(['timeout', '10', 'qemu-io', '-r', '-f', 'raw', '-c', 'read 0 512', nbdUrl(exported)], {
          timeoutMs: 30_000,
        });
        const said = during.code === 124 ? 'no answer within 10 s' : (during.stderr || during.stdout).trim().slice(0, 300);
        record.during = { volume: listed, nbdRead: { exit: during.code, said } };
        if (during.code === 0)
          throw new CheckFailed(`${reader} read volume ${created.id} over NBD from ${home} while ${home} was powered off`);
      } finally {
        step.phase(`${home} back`);
        await faults.heal(cut);
      }
      const after = await waitFor(
        `volume ${created.id} exported again by ${home}, holding its data`,
        { timeoutMs: 120_000, intervalMs: 1000 },
        async () => {
          const v = await coronafs.volume(a, created.id);
          const c = await contents(reader, v, seed); // throws (and is tried again) while the export is not back
          // Exported and read: what it holds is the answer, not worth waiting on.
          if (!c.seedIntact || !c.patternIntact)
            throw new StopWaiting(
              `volume ${v.id} is exported again by ${home} but reads back with its seed ${c.seedIntact ? 'intact' : 'LOST'}, the data written over NBD ${c.patternIntact ? 'intact' : 'LOST'}`,
            );
          return { volume: v, ...c };
        },
      );
      record.after = after;
      return `volume ${created.id} on ${home}: seed and ${PATTERN.length >> 10} KiB written over NBD intact across ${home}'s power cut (unreachable while down)`;
    } finally {
      await step.json('coronafs-node04-local-state.json', record);
      await coronafs.deleteVolume(a, created.id).catch((e: unknown) => step.log.warn(`volume ${created.id} not deleted: ${String(e)}`));
    }
  },
};
