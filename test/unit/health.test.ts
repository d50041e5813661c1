import { describe, expect, it } from 'vitest';
import { type HealthSample, judgeHealth, KERNEL_TROUBLE } from '../../src/cluster/health.js';

const ok: HealthSample = { diskPct: 40, inodePct: 10, skewS: 0.3, skewErrS: 0.05, kernelLines: [] };

describe('node health judgement', () => {
  it('a healthy sample has no findings', () => {
    expect(judgeHealth('node01', ok, [])).toEqual([]);
  });

  it('names the node and the evidence for a full disk, exhausted inodes, a far clock, kernel trouble', () => {
    expect(judgeHealth('node03', { ...ok, diskPct: 97 }, [])).toEqual([
      { node: 'node03', severity: 'fail', what: 'root filesystem 97% full', evidence: 'df -P /' },
    ]);
    expect(judgeHealth('node03', { ...ok, diskPct: 91 }, [])[0]).toMatchObject({ severity: 'warn' });
    expect(judgeHealth('node03', { ...ok, inodePct: 99 }, [])[0]).toMatchObject({
      severity: 'fail',
      what: 'root filesystem out of inodes (99% used)',
    });
    expect(judgeHealth('node03', { ...ok, skewS: -45 }, [])[0]).toMatchObject({ severity: 'fail', what: "clock -45.0 s off the host's" });
    expect(judgeHealth('node03', { ...ok, skewS: 3.5 }, [])[0]).toMatchObject({ severity: 'warn' });
    // A skew within the round trip's uncertainty is not a finding.
    expect(judgeHealth('node03', { ...ok, skewS: 2.4, skewErrS: 1 }, [])).toEqual([]);
    const oom = '[  812.1] Out of memory: Killed process 311 (postgres) total-vm:1024kB';
    expect(judgeHealth('node02', ok, [oom])).toEqual([
      { node: 'node02', severity: 'fail', what: `kernel trouble since boot: ${oom}`, evidence: oom },
    ]);
  });

  it('recognises the kernel lines kola scans for, and not ordinary ones', () => {
    for (const l of [
      'Kernel panic - not syncing: Attempted to kill init!',
      'BUG: kernel NULL pointer dereference, address: 0000000000000008',
      'Oops: 0002 [#1] PREEMPT SMP NOPTI',
      'INFO: task etcd:245 blocked for more than 120 seconds.',
      'postgres invoked oom-killer: gfp_mask=0x140cca',
      'Out of memory: Killed process 311 (postgres)',
    ])
      expect(KERNEL_TROUBLE.test(l), l).toBe(true);
    for (const l of [
      'etcd[243]: server is likely overloaded',
      'systemd[1]: Started iam.service',
      'BUGS: none',
      // sshd logs this when a client goes away mid-session: "DEBUG: " is not "BUG: ".
      'sshd[269]: fatal: ssh_packet_send_debug: send DEBUG: Broken pipe',
    ])
      expect(KERNEL_TROUBLE.test(l), l).toBe(false);
  });
});
