import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { INSTALL_SEQUENCE, parseMarkerLine } from '../../src/baremetal/markers.js';
import { BIN, cli, REPO } from '../helpers/cli.js';
import { processesMentioning } from '../helpers/procs.js';

/**
 * The bare-metal install proof on real QEMU chassis (TCG here): the lab installer ISO, the
 * deployer on the host, one control-plane and one worker machine, both negative controls,
 * and the hardware-smoke handoff and capture on the evidence it leaves.
 */
const WORK = path.join(REPO, 'work', 'e2e-baremetal');
const run = (args: string[], timeout = 1_200_000) => cli(['--work-root', WORK, ...args], { timeout });
const result = (dir: string) =>
  JSON.parse(readFileSync(path.join(dir, 'result.json'), 'utf8')) as {
    status: string;
    steps: { name: string; status: string; error?: string }[];
  };
const markerNames = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .map(parseMarkerLine)
    .filter((m) => m !== null)
    .map((m) => m.name);

describe('baremetal-iso and hardware-smoke (real QEMU chassis)', () => {
  let greenDir = '';

  afterAll(async () => {
    await run(['stop'], 120_000);
    expect(processesMentioning(WORK)).toEqual([]);
  }, 180_000);

  it('installs a control-plane and a worker machine from the ISO and both converge to their desired system', async () => {
    const r = await run(['--json', 'baremetal-iso']);
    const out = JSON.parse(r.stdout);
    greenDir = out.dir;
    expect(
      result(greenDir).steps.map((s) => `${s.name}:${s.status}`),
      r.stderr.slice(-3000),
    ).toEqual(['installer-image:passed', 'deployer:passed', 'install:passed', 'first-boot:passed', 'desired-system:passed']);
    expect(r.exitCode).toBe(0);
    for (const id of ['bm-control-01', 'bm-worker-01']) {
      expect(markerNames(path.join(greenDir, id, 'markers.log'))).toEqual([...INSTALL_SEQUENCE]);
      expect(readFileSync(path.join(greenDir, id, 'console.log'), 'utf8')).toContain('ULTRACLOUD_MARKER post-install-boot');
    }
    const nodes = JSON.parse(readFileSync(path.join(greenDir, 'deployer/nodes.json'), 'utf8'));
    expect(nodes['bm-control-01'].phoneHomes[0].machine_id).toBe('uc-bm-control-01');
    expect(nodes['bm-worker-01'].desiredSystem).toMatchObject({ state: 'active', system: 'worker-v1' });
    expect(existsSync(path.join(greenDir, 'phone-home.json'))).toBe(true);
    expect(processesMentioning(WORK)).toEqual([]);
  }, 1_200_000);

  it('negative control: a plan naming a disk id no machine has fails at "disk selected"', async () => {
    const r = await run(['--json', 'baremetal-iso', '--inject', 'bad-disk-id']);
    expect(r.exitCode).toBe(1);
    const install = result(JSON.parse(r.stdout).dir).steps.find((s) => s.name === 'install')!;
    expect(install.status).toBe('failed');
    expect(install.error).toMatch(
      /bm-control-01: failure marker at disk-selected: disk-selected \/dev\/disk\/by-id\/virtio-uc-missing-root does not exist/,
    );
    expect(install.error).toContain('--- console tail');
    expect(processesMentioning(WORK)).toEqual([]);
  }, 1_200_000);

  it('negative control: a desired system that fails its health check is rolled back and the lane says so', async () => {
    const r = await run(['--json', 'baremetal-iso', '--inject', 'unhealthy-system']);
    expect(r.exitCode).toBe(1);
    const dir = JSON.parse(r.stdout).dir;
    const step = result(dir).steps.find((s) => s.name === 'desired-system')!;
    expect(step.status).toBe('failed');
    expect(step.error).toMatch(
      /bm-worker-01: desired system was rolled back: node=bm-worker-01 system=broken-health-v1 previous=base reason=health-check-failed/,
    );
    const nodes = JSON.parse(readFileSync(path.join(dir, 'deployer/nodes.json'), 'utf8'));
    expect(nodes['bm-worker-01'].desiredSystem).toMatchObject({ state: 'rolled-back', system: 'broken-health-v1' });
  }, 1_200_000);

  it('kill -9 of the harness mid-install leaves chassis that `stop` finds by pidfile', async () => {
    const child = execa('node', [BIN, '--work-root', WORK, 'baremetal-iso'], { reject: false, stdin: 'ignore' });
    const pidfile = path.join(WORK, 'baremetal-iso/chassis/bm-worker-01/qemu.pid');
    const deadline = Date.now() + 60_000;
    while (!existsSync(pidfile) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGKILL');
    await child;
    expect(processesMentioning(path.join(WORK, 'baremetal-iso/chassis')).length).toBeGreaterThan(0);
    const stop = await run(['stop'], 60_000);
    expect(stop.stdout).toMatch(/chassis bm-(control|worker)-01: term/);
    expect(processesMentioning(WORK)).toEqual([]);
  }, 120_000);

  it('hardware-smoke preflight without a transport writes the handoff and says blocked', async () => {
    const r = await run(['hardware-smoke', 'preflight'], 120_000);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('blocked: no transport');
    const dir = path.join(WORK, 'hardware-smoke/latest');
    expect(readFileSync(path.join(dir, 'kernel-params.txt'), 'utf8')).toMatch(
      /^console=ttyS0,115200 .*ultracloud\.installer=1 ultracloud\.deployer=/,
    );
    expect(readFileSync(path.join(dir, 'expected-markers.txt'), 'utf8').trim().split('\n')).toEqual(
      INSTALL_SEQUENCE.map((m) => `ULTRACLOUD_MARKER ${m}`),
    );
    expect(readFileSync(path.join(dir, 'failure-markers.txt'), 'utf8')).toContain('ULTRACLOUD_MARKER FAIL');
    expect(readFileSync(path.join(dir, 'handoff.md'), 'utf8')).toContain('/dev/disk/by-id/virtio-uc-control-root');
    expect(JSON.parse(readFileSync(path.join(dir, 'transport.json'), 'utf8'))).toEqual({ state: 'blocked', reason: 'no transport' });
  }, 180_000);

  it('hardware-smoke run --transport usb writes the ISO to a real block device (a loop device), only when confirmed', async () => {
    const backing = path.join(WORK, 'usb-stick.img');
    await execa('truncate', ['-s', '64M', backing]);
    const dev = (await execa('losetup', ['--find', '--show', backing])).stdout.trim();
    try {
      const none = await run(['hardware-smoke', 'run'], 60_000);
      expect(none.exitCode).toBe(2);
      expect(none.stderr).toContain('run needs a transport');
      const refused = await run(['hardware-smoke', 'run', '--transport', 'usb', '--device', dev], 120_000);
      expect(refused.exitCode).toBe(2);
      expect(refused.stderr).toMatch(new RegExp(`writing ${dev} .* destroys its contents: pass --yes`));
      const notBlock = await run(['hardware-smoke', 'run', '--transport', 'usb', '--device', backing, '--yes'], 120_000);
      expect(notBlock.stderr).toContain(`${backing} is not a block device`);
      const r = await run(['--json', 'hardware-smoke', 'run', '--transport', 'usb', '--device', dev, '--yes'], 120_000);
      expect(r.exitCode, r.stderr).toBe(0);
      const iso = JSON.parse(readFileSync(path.join(JSON.parse(r.stdout).dir, 'installer.json'), 'utf8')).iso as string;
      const size = readFileSync(iso).length;
      expect(readFileSync(dev).subarray(0, size).equals(readFileSync(iso))).toBe(true);
    } finally {
      await execa('losetup', ['--detach', dev]);
    }
  }, 240_000);

  it('hardware-smoke capture checks the markers of a console log, and names the last one when the log stops short', async () => {
    const ok = await run(['hardware-smoke', 'capture', '--log', path.join(greenDir, 'bm-control-01/console.log')], 60_000);
    expect(ok.exitCode, ok.stderr).toBe(0);
    const short = path.join(WORK, 'short-console.log');
    writeFileSync(
      short,
      readFileSync(path.join(greenDir, 'bm-control-01/console.log'), 'utf8').split('ULTRACLOUD_MARKER install-done')[0]!,
    );
    const bad = await run(['hardware-smoke', 'capture', '--log', short], 60_000);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/the log ends before install-done; last marker: disk-selected/);
  }, 120_000);
});
