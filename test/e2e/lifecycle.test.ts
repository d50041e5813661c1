import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountsUnder } from '../../src/core/work-root.js';
import { BIN, cli, REPO } from '../helpers/cli.js';
import { processesMentioning, waitFor } from '../helpers/procs.js';

/**
 * Real guests: builds (or reuses) the lab image, boots two nodes, exercises status/ssh/logs,
 * the lock, kill -9 mid-start, and stop. Own state dir, shared image cache (work/images).
 */
const E2E = path.join(REPO, 'work', 'e2e-lifecycle');
const env = { PHOTON_VM_DIR: path.join(E2E, 'state'), PHOTON_CLUSTER_VDE_SWITCH_DIR: path.join(E2E, 'vde') };
/** CLI children get SIGTERM (and unwind what they started) before their test times out. */
const run = (args: string[], timeout = 600_000) => cli(args, { env, timeout });
const leftovers = () => processesMentioning(E2E);

describe('lab cluster lifecycle (real QEMU guests)', () => {
  beforeAll(async () => {
    await run(['clean']);
    const b = await run(['build'], 1_800_000);
    expect(b.exitCode, b.stderr).toBe(0);
  }, 1_800_000);

  afterAll(async () => {
    await run(['stop', '--timeout', '20']);
    expect(leftovers()).toEqual([]);
  }, 120_000);

  it('reuses the cached image when nothing changed: no builder runs', async () => {
    const r = await run(['--json', 'build']);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { id: string; reused: boolean; dir: string };
    expect(out).toMatchObject({ id: expect.stringMatching(/^[0-9a-f]{16}$/), reused: true });
    const messages = readFileSync(path.join(out.dir, 'run.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(messages).toEqual(expect.arrayContaining([expect.stringMatching(/reusing cached build/)]));
    expect(messages.filter((m) => /mmdebstrap|mkfs\.ext4|qemu-img convert/.test(m))).toEqual([]);
  }, 60_000);

  it('SIGTERM during a real image build stops the builder and its children, unmounts its chroot, and leaves no partial build', async () => {
    const images = path.join(REPO, 'work', 'images');
    const harness = execa('node', [BIN, 'build', '--force'], {
      cwd: REPO,
      env: { ...process.env, ...env },
      reject: false,
      stdin: 'ignore',
    });
    try {
      // mmdebstrap has its chroot's proc/sys/dev mounted once packages unpack.
      await waitFor(() => mountsUnder(images).length > 0, 300_000, 'mmdebstrap to mount its chroot');
      harness.kill('SIGTERM');
      const r = await harness;
      expect(r.exitCode).toBe(143);
      await waitFor(
        () => processesMentioning(images).length === 0 && mountsUnder(images).length === 0,
        10_000,
        'no builder process and no mount left',
      );
      expect(readdirSync(images).filter((n) => n.startsWith('.build-'))).toEqual([]);
    } finally {
      harness.kill('SIGKILL');
      await harness;
    }
    const next = await run(['--json', 'build']); // starts clean: the interrupted --force left nothing to trip on
    expect(next.exitCode, next.stderr).toBe(0);
    expect(JSON.parse(next.stdout)).toMatchObject({ reused: true });
  }, 600_000);

  it('starts two nodes that answer over SSH, reach each other on the cluster network, and stop cleanly', async () => {
    const s = await run(['start', '--nodes', 'node01,node02']);
    expect(s.exitCode, s.stderr).toBe(0);

    const st = JSON.parse((await run(['--json', 'status'])).stdout);
    const up = st.nodes.filter((n: { running: boolean }) => n.running);
    expect(up.map((n: { name: string }) => n.name)).toEqual(['node01', 'node02']);
    for (const n of up) {
      expect(n.ssh).toBe('reachable');
      expect(Object.keys(n.units)).toEqual(expect.arrayContaining(['ssh.service', 'cluster-config.service', 'chainfire.service']));
      expect(Object.entries(n.units).filter(([, s]) => s !== 'active')).toEqual([]);
      expect(n.ports.ssh).toBeGreaterThan(1024);
    }
    expect(st.switchPid).toBeGreaterThan(0);

    for (const n of ['node01', 'node02']) expect(statSync(path.join(env.PHOTON_VM_DIR, n, 'disk.qcow2')).mode & 0o777, n).toBe(0o600);
    const host = await run(['ssh', 'node02', '--', 'hostname']);
    expect(host.stdout.trim()).toBe('node02');
    const ping = await run(['ssh', 'node01', '--', 'ping', '-c1', '-W5', '10.100.0.12']);
    expect(ping.exitCode, ping.stdout + ping.stderr).toBe(0);
    expect((await run(['ssh', 'node01', '--', 'exit', '3'])).exitCode).toBe(3);
    expect((await run(['logs', 'node01'])).stdout).toMatch(/ULTRACLOUD_MARKER cluster-config-done node=node01/);
    expect((await run(['logs', 'node01', '--journal', '-n', '50'])).exitCode).toBe(0);
    expect((await run(['ssh', 'node09', '--', 'true'])).exitCode).toBe(2);

    const stop = await run(['stop']);
    expect(stop.exitCode).toBe(0);
    expect(stop.stdout).toMatch(/node01: (powerdown|term|kill)/);
    expect(leftovers()).toEqual([]);
  }, 900_000);

  it('refuses a second harness on the same state dir, and kill -9 mid-start leaves nothing after stop', async () => {
    expect((await run(['stop', '--timeout', '10'])).exitCode).toBe(0); // start from nothing, whatever ran before
    const harness = execa('node', [BIN, 'start', '--nodes', 'node01,node02'], {
      cwd: REPO,
      env: { ...process.env, ...env },
      reject: false,
    });
    try {
      const pidfiles = ['node01', 'node02'].map((n) => path.join(env.PHOTON_VM_DIR, n, 'qemu.pid'));
      await waitFor(() => pidfiles.every((p) => existsSync(p)), 120_000, 'both guests launched').catch(async (err: Error) => {
        harness.kill('SIGKILL');
        throw new Error(`${err.message}\n--- the start harness said ---\n${(await harness).stderr}`);
      });

      const second = await run(['stop']);
      expect(second.exitCode).toBe(2);
      expect(second.stderr).toMatch(new RegExp(`another ultracloud \\(pid ${harness.pid}, "start"`));

      harness.kill('SIGKILL');
      await harness;
      expect(processesMentioning(path.join(env.PHOTON_VM_DIR, 'node01')).length).toBeGreaterThan(0); // guests outlive a SIGKILLed harness...
      const stop = await run(['stop', '--timeout', '10']);
      expect(stop.exitCode, stop.stderr).toBe(0);
      expect(leftovers()).toEqual([]); // ...and stop finds them by their pidfiles
    } finally {
      // Whatever failed above: no harness holding the lock, no guests left.
      harness.kill('SIGKILL');
      await harness;
      await run(['stop', '--timeout', '10']);
    }
  }, 300_000);
});
