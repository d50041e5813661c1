import { constants, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { z } from 'zod';
import { writeFileAtomic } from '../core/atomic.js';
import { UsageError } from '../core/errors.js';
import { within } from '../core/time.js';
import { PROBE_MARKER, PROBE_START, probeBootSector } from '../host/accel-probe-sector.js';

export { PROBE_MARKER, PROBE_START, probeBootSector } from '../host/accel-probe-sector.js';

export const AccelResult = z.object({ usable: z.boolean(), reason: z.string(), ms: z.number() });
export type AccelResult = z.infer<typeof AccelResult>;

export const AccelVerdict = z.object({
  bootId: z.string(),
  probedAt: z.string(),
  kvm: AccelResult,
  tcg: AccelResult,
  chosen: z.enum(['kvm', 'tcg']),
});
export type AccelVerdict = z.infer<typeof AccelVerdict>;

export async function probeAccel(accel: 'kvm' | 'tcg', deadlineMs: number): Promise<AccelResult> {
  const t0 = Date.now();
  const done = (usable: boolean, reason: string): AccelResult => ({ usable, reason, ms: Date.now() - t0 });
  if (accel === 'kvm') {
    try {
      await fs.access('/dev/kvm', constants.R_OK | constants.W_OK);
    } catch (err) {
      return done(false, `/dev/kvm not usable: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ultracloud-accel-'));
  try {
    const disk = path.join(dir, 'boot.img');
    await fs.writeFile(disk, probeBootSector());
    const child = execa(
      'qemu-system-x86_64',
      [
        '-accel',
        accel,
        '-machine',
        'pc',
        '-m',
        '16',
        '-nodefaults',
        '-display',
        'none',
        '-no-reboot',
        '-serial',
        'stdio',
        '-drive',
        `file=${disk},format=raw,if=ide`,
      ],
      { reject: false, stdin: 'ignore', forceKillAfterDelay: 2000 },
    );
    let out = '';
    const seen = new Promise<boolean>((resolve) => {
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString('latin1');
        if (out.includes(PROBE_MARKER)) resolve(true);
      });
      void child.then(() => resolve(false));
    });
    const outcome = await within(seen, deadlineMs);
    child.kill('SIGKILL');
    const res = await child;
    if (outcome === true) return done(true, `probe guest printed its marker in ${Date.now() - t0} ms`);
    if (outcome === 'timeout') {
      const within = `within ${(deadlineMs / 1000).toFixed(0)} s`;
      return done(
        false,
        out.includes(PROBE_START)
          ? `probe guest started but did not finish a 64M-iteration CPU loop ${within}: the vCPU stalls (nested KVM hangs here)`
          : `probe guest printed nothing ${within}`,
      );
    }
    const err =
      String(res.stderr ?? '')
        .trim()
        .split('\n')
        .pop() || `qemu exited with ${res.exitCode ?? res.signal}`;
    return done(false, `qemu failed: ${err}`);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/**
 * Cached per host boot (a reboot is the only thing that changes the answer), per user, in the
 * user's own cache dir (mode 0600): not in a /tmp every user and work root shares.
 */
export function accelCacheFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'ultracloud', 'accel.json');
}

export async function accelVerdict(opts: { refresh?: boolean; kvmDeadlineMs?: number } = {}): Promise<AccelVerdict & { cached: boolean }> {
  const id = bootId();
  if (!opts.refresh) {
    try {
      const cached = AccelVerdict.parse(JSON.parse(await fs.readFile(accelCacheFile(), 'utf8')));
      if (cached.bootId === id) return { ...cached, cached: true };
    } catch {
      /* no cache yet, or from an older format: probe again */
    }
  }
  const [kvm, tcg] = await Promise.all([probeAccel('kvm', opts.kvmDeadlineMs ?? 15000), probeAccel('tcg', 30000)]);
  const verdict: AccelVerdict = { bootId: id, probedAt: new Date().toISOString(), kvm, tcg, chosen: kvm.usable ? 'kvm' : 'tcg' };
  await fs.mkdir(path.dirname(accelCacheFile()), { recursive: true, mode: 0o700 });
  await writeFileAtomic(accelCacheFile(), JSON.stringify(verdict, null, 2), { mode: 0o600 });
  return { ...verdict, cached: false };
}

export type AccelChoice = 'auto' | 'kvm' | 'tcg';

/** Resolve --accel: auto follows the probe; an explicit kvm is refused when the probe says it hangs. */
export async function chooseAccel(choice: AccelChoice, warn: (msg: string) => void): Promise<'kvm' | 'tcg'> {
  if (choice === 'tcg') return 'tcg';
  const v = await accelVerdict();
  if (v.kvm.usable) return 'kvm';
  if (choice === 'kvm') throw new UsageError(`--accel kvm requested but the KVM probe failed: ${v.kvm.reason}`);
  if (!v.tcg.usable) throw new UsageError(`neither KVM nor TCG works: kvm: ${v.kvm.reason}; tcg: ${v.tcg.reason}`);
  warn(`kvm unusable (${v.kvm.reason}); using tcg (slow: expect ~45 s per guest boot)`);
  return 'tcg';
}
