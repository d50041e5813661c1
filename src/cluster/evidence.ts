import { promises as fs } from 'node:fs';
import path from 'node:path';
import { errorMessage } from '../core/errors.js';
import type { Cluster } from './cluster.js';

/** Per file; the tail is what explains a failure. */
export const NODE_EVIDENCE_MAX_BYTES = 10 * 2 ** 20;

/** The last `max` bytes of a file, or null when it does not exist. */
async function tailBytes(file: string, max: number): Promise<Buffer | null> {
  const fh = await fs.open(file, 'r').catch(() => null);
  if (!fh) return null;
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, max);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    return buf;
  } finally {
    await fh.close();
  }
}

/**
 * kola's per-node evidence, so a run dir explains itself after the cluster is gone: each node's
 * serial console and the journal of its current boot (both bounded to their last 10 MiB) into
 * `<dir>/nodes/<node>/`. A node that is down gets its console and a note instead of a journal.
 */
export async function saveNodeEvidence(
  cluster: Cluster,
  dir: string,
  o: { maxBytes?: number; journalTimeoutMs?: number } = {},
): Promise<string[]> {
  const max = o.maxBytes ?? NODE_EVIDENCE_MAX_BYTES;
  const saved: string[] = [];
  await Promise.all(
    cluster.nodes().map(async (node) => {
      const out = path.join(dir, 'nodes', node.name);
      await fs.mkdir(out, { recursive: true });
      const consoleText = await tailBytes(node.files.console, max);
      await fs.writeFile(path.join(out, 'console.log'), consoleText ?? `(no console log at ${node.files.console})\n`);
      let journal: string;
      if (!(await node.running())) journal = `(${node.name} was not running: no journal; console.log holds its last boot)\n`;
      else
        try {
          // Newest lines are the ones that matter: journalctl writes everything, tail keeps the last bytes.
          const r = await node.exec(`journalctl -b --no-pager -o short-iso-precise | tail -c ${max}`, {
            timeoutMs: o.journalTimeoutMs ?? 30_000,
            via: 'session', // up to 10 MiB: not through the text channel
          });
          journal = r.stdout || `(journalctl printed nothing: ${r.stderr.trim()})\n`;
        } catch (err) {
          journal = `(journal not collected: ${errorMessage(err)})\n`;
        }
      await fs.writeFile(path.join(out, 'journal.txt'), journal);
      saved.push(`nodes/${node.name}/console.log`, `nodes/${node.name}/journal.txt`);
    }),
  );
  return saved.sort();
}
