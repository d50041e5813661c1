import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../core/atomic.js';

/**
 * Runtime state of a cluster, on disk so `status`, `ssh` and `stop` work from any later
 * process (also after the harness that started the guests was SIGKILLed).
 */
export const NodeRecord = z.object({
  name: z.string(),
  ip: z.string(),
  roles: z.array(z.string()),
  accel: z.enum(['kvm', 'tcg']),
  /** Guest port -> host port on 127.0.0.1, by name (ssh, plus the profile's exposed ports). */
  ports: z.record(z.string(), z.object({ guest: z.number(), host: z.number() })),
  units: z.array(z.string()),
  image: z.string(),
  startedAt: z.string(),
  /** Size of the console log when this boot began: readiness reads only what this boot wrote. */
  consoleOffset: z.number().default(0),
});
export type NodeRecord = z.infer<typeof NodeRecord>;

export const ClusterRecord = z.object({
  profile: z.string(),
  profileFile: z.string(),
  startedAt: z.string(),
  nodes: z.array(z.string()),
});
export type ClusterRecord = z.infer<typeof ClusterRecord>;

export interface NodeFiles {
  dir: string;
  record: string;
  disk: string;
  env: string;
  qmp: string;
  pidfile: string;
  console: string;
  hostKey: string;
  knownHosts: string;
}

export function nodeFiles(stateDir: string, node: string): NodeFiles {
  const dir = path.join(stateDir, node);
  return {
    dir,
    record: path.join(dir, 'node.json'),
    disk: path.join(dir, 'disk.qcow2'),
    env: path.join(dir, 'node.env'),
    qmp: path.join(dir, 'qmp.sock'),
    pidfile: path.join(dir, 'qemu.pid'),
    console: path.join(dir, 'vm.log'),
    hostKey: path.join(dir, 'ssh_host_key'),
    knownHosts: path.join(dir, 'known_hosts'),
  };
}

export async function readNodeRecord(stateDir: string, node: string): Promise<NodeRecord | null> {
  try {
    return NodeRecord.parse(JSON.parse(await fs.readFile(nodeFiles(stateDir, node).record, 'utf8')));
  } catch {
    return null;
  }
}

export async function writeNodeRecord(stateDir: string, rec: NodeRecord): Promise<void> {
  await writeFileAtomic(nodeFiles(stateDir, rec.name).record, `${JSON.stringify(rec, null, 2)}\n`);
}

/** Node dirs present in the state dir (whatever profile made them): what `stop` must consider. */
export async function nodesInState(stateDir: string): Promise<string[]> {
  const entries = await fs.readdir(stateDir, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const f = nodeFiles(stateDir, e.name);
    const has = await Promise.all(
      [f.record, f.pidfile].map((p) =>
        fs.access(p).then(
          () => true,
          () => false,
        ),
      ),
    );
    if (has.some(Boolean)) out.push(e.name);
  }
  return out.sort();
}

/** Every readable node record in a state dir. */
export async function nodeRecords(stateDir: string): Promise<NodeRecord[]> {
  const recs = await Promise.all((await nodesInState(stateDir)).map((n) => readNodeRecord(stateDir, n)));
  return recs.filter((r): r is NodeRecord => r !== null);
}

export async function writeClusterRecord(stateDir: string, rec: ClusterRecord): Promise<void> {
  await writeFileAtomic(path.join(stateDir, 'cluster.json'), `${JSON.stringify(rec, null, 2)}\n`);
}
