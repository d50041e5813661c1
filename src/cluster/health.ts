import { promises as fs } from 'node:fs';
import { errorMessage } from '../core/errors.js';
import type { Node } from './node.js';

/**
 * kola's console and journal scan, and the other ways a node is unwell that no step names:
 * kernel oops/panic/hung tasks/OOM kills since boot (console or kernel log), a root filesystem
 * nearly full or out of inodes, a clock far from the host's.
 */
export interface HealthFinding {
  node: string;
  severity: 'fail' | 'warn';
  what: string;
  evidence: string;
}

/** Kernel lines that mean the node is unwell, whatever the lane is doing. */
export const KERNEL_TROUBLE =
  /Kernel panic|Oops:|\bBUG: |blocked for more than [0-9]+ seconds|hung_task|Out of memory: Killed process|oom-kill:|invoked oom-killer/;

export const LIMITS = { diskFailPct: 95, diskWarnPct: 90, inodeFailPct: 95, clockWarnS: 2, clockFailS: 30 };

export interface HealthSample {
  diskPct: number;
  inodePct: number;
  /** Guest clock minus host clock (seconds), and how well that is known (half the round trip). */
  skewS: number;
  skewErrS: number;
  kernelLines: string[];
}

/** Judge one sample (pure, so the limits are tested without guests). */
export function judgeHealth(node: string, s: HealthSample, consoleLines: string[]): HealthFinding[] {
  const out: HealthFinding[] = [];
  const add = (severity: HealthFinding['severity'], what: string, evidence: string) => out.push({ node, severity, what, evidence });
  if (s.diskPct >= LIMITS.diskFailPct) add('fail', `root filesystem ${s.diskPct}% full`, 'df -P /');
  else if (s.diskPct >= LIMITS.diskWarnPct) add('warn', `root filesystem ${s.diskPct}% full`, 'df -P /');
  if (s.inodePct >= LIMITS.inodeFailPct) add('fail', `root filesystem out of inodes (${s.inodePct}% used)`, 'df -Pi /');
  const skew = Math.abs(s.skewS) - s.skewErrS;
  if (skew > LIMITS.clockFailS) add('fail', `clock ${s.skewS.toFixed(1)} s off the host's`, 'date +%s%N against the host');
  else if (skew > LIMITS.clockWarnS) add('warn', `clock ${s.skewS.toFixed(1)} s off the host's`, 'date +%s%N against the host');
  const kernel = [...new Set([...s.kernelLines, ...consoleLines])];
  if (kernel.length) add('fail', `kernel trouble since boot: ${kernel[0]}`, kernel.slice(0, 5).join('\n'));
  return out;
}

/** Kernel trouble on this boot's part of the serial console (works when SSH does not). */
export async function consoleTrouble(node: Node): Promise<string[]> {
  const rec = await node.record().catch(() => null);
  const text = await fs.readFile(node.files.console).then(
    (b) => b.subarray(rec?.consoleOffset ?? 0).toString('utf8'),
    () => '',
  );
  return text
    .split('\n')
    .filter((l) => KERNEL_TROUBLE.test(l))
    .map((l) => l.trim())
    .slice(-5);
}

const pct = (dfLine: string) => Number(/(\d+)%/.exec(dfLine)?.[1] ?? 0);

/** One round trip: disk and inode use of /, the guest's clock, kernel trouble in this boot's kernel log. */
export async function sampleHealth(node: Node): Promise<HealthSample> {
  const script = `df -P / | tail -n 1; echo '#'; df -Pi / | tail -n 1; echo '#'; date +%s%N; echo '#'; journalctl -k -b --no-pager -o cat 2>/dev/null | grep -E '${KERNEL_TROUBLE.source}' | tail -n 5`;
  const t0 = Date.now();
  const r = await node.exec(script, { timeoutMs: 30_000 });
  const t1 = Date.now();
  const [disk = '', inodes = '', clock = '', kernel = ''] = r.stdout.split('#\n');
  const guestMs = Number(BigInt(clock.trim() || '0') / 1_000_000n);
  return {
    diskPct: pct(disk),
    inodePct: pct(inodes),
    skewS: (guestMs - (t0 + t1) / 2) / 1000,
    skewErrS: (t1 - t0) / 2000,
    kernelLines: kernel.split('\n').filter(Boolean),
  };
}

/** Every running node's findings; a node that does not answer is itself a finding. */
export async function checkHealth(nodes: readonly Node[]): Promise<HealthFinding[]> {
  const all = await Promise.all(
    nodes.map(async (n): Promise<HealthFinding[]> => {
      if (!(await n.running())) return [];
      const consoleLines = await consoleTrouble(n);
      try {
        return judgeHealth(n.name, await sampleHealth(n), consoleLines);
      } catch (err) {
        return [
          ...judgeHealth(n.name, { diskPct: 0, inodePct: 0, skewS: 0, skewErrS: 0, kernelLines: [] }, consoleLines),
          {
            node: n.name,
            severity: 'fail',
            what: `does not answer: ${errorMessage(err).split('\n')[0]}`,
            evidence: `console tail:\n${await n.console(10)}`,
          },
        ];
      }
    }),
  );
  return all.flat();
}

export function renderFindings(f: readonly HealthFinding[]): string {
  return f.map((x) => `${x.node}: ${x.what}\n  evidence: ${x.evidence.split('\n').join('\n  ')}`).join('\n');
}
