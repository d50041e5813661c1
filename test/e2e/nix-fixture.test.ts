import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, REPO } from '../helpers/cli.js';
import { processesMentioning } from '../helpers/procs.js';

/**
 * The nix image provider on real nix (Debian's nix-bin, offline) and real guests: a fixture
 * flake with no inputs builds two kernel + busybox-initramfs nodes in ONE `nix build`, they
 * boot under QEMU and print their marker. Own work root so nothing else shares its state.
 */
const WORK = path.join(REPO, 'work', 'e2e-nix');
const FIXTURE = path.join(REPO, 'test/fixtures/nix-cluster');
const run = (profile: string, args: string[], timeout = 300_000) =>
  cli(['--work-root', WORK, '--profile', path.join(FIXTURE, profile), ...args], { timeout });
const runLog = (dir: string) =>
  readFileSync(path.join(dir, 'run.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { msg: string; argv?: string[] });

describe('nix image provider on a fixture flake (real nix, real guests)', () => {
  beforeAll(async () => {
    await run('profile.json', ['clean']);
  }, 120_000);

  afterAll(async () => {
    // Every profile this file starts has its own state dir: stop each, whatever failed.
    for (const p of ['profile.json', 'wrong-marker-profile.json']) await run(p, ['stop']);
    expect(processesMentioning(WORK)).toEqual([]);
  }, 120_000);

  it('builds every node in ONE nix build invocation, recorded in run.log', async () => {
    const r = await run('profile.json', ['--json', 'build']);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out.nodes)).toEqual(['node01', 'node02']);
    for (const n of ['node01', 'node02']) {
      expect(out.nodes[n].kernel).toMatch(new RegExp(`^/nix/store/[a-z0-9]{32}-${n}-vm/kernel$`));
      expect(existsSync(out.nodes[n].initrd)).toBe(true);
    }
    const builds = runLog(out.dir).filter((l) => l.argv?.[0] === 'nix' && l.argv.includes('build'));
    expect(builds).toHaveLength(1);
    const argv = builds[0]!.argv!;
    expect(argv).toEqual(expect.arrayContaining(['--no-link', '--json', '--max-jobs', '--cores']));
    expect(argv.filter((a) => a.includes('#packages.x86_64-linux.'))).toHaveLength(2);
    expect(existsSync(path.join(out.dir, 'builder.log'))).toBe(true);
  }, 300_000);

  it("honours the seeds' parallelism overrides, ULTRACLOUD_ before PHOTON_CLUSTER_", async () => {
    const r = await cli(['--work-root', WORK, '--profile', path.join(FIXTURE, 'profile.json'), '--json', 'build'], {
      env: { ULTRACLOUD_LOCAL_NIX_MAX_JOBS: '3', PHOTON_CLUSTER_NIX_MAX_JOBS: '5', PHOTON_CLUSTER_NIX_BUILD_CORES: '1' },
      timeout: 120_000,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const argv = runLog(JSON.parse(r.stdout).dir).find((l) => l.argv?.includes('build'))!.argv!;
    expect(argv[argv.indexOf('--max-jobs') + 1]).toBe('3');
    expect(argv[argv.indexOf('--cores') + 1]).toBe('1');
    const bad = await cli(['--work-root', WORK, '--profile', path.join(FIXTURE, 'profile.json'), 'build'], {
      env: { ULTRACLOUD_LOCAL_NIX_BUILD_CORES: 'lots' },
      timeout: 60_000,
    });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('ULTRACLOUD_LOCAL_NIX_BUILD_CORES=lots: expected a positive integer');
  }, 180_000);

  it('boots the nodes and waits for each marker on its console; status and stop find them by pid', async () => {
    const s = await run('profile.json', ['start']);
    expect(s.exitCode, s.stderr).toBe(0);
    expect(s.stderr).toMatch(/node01: ready: console marker "ULTRACLOUD_FIXTURE_READY node=node01"/);
    expect(s.stderr).toMatch(/node02: ready: console marker "ULTRACLOUD_FIXTURE_READY node=node02"/);
    const st = JSON.parse((await run('profile.json', ['--json', 'status'])).stdout);
    for (const n of st.nodes) expect(n).toMatchObject({ running: true, marker: true, ssh: 'not used' });
    const log = readFileSync(path.join(WORK, 'test-cluster/state-nix-fixture/node02/vm.log'), 'utf8');
    expect(log).toMatch(/ULTRACLOUD_FIXTURE_READY node=node02 kernel=\S+/);
    const stop = await run('profile.json', ['stop']);
    expect(stop.exitCode, stop.stderr).toBe(0);
    expect(processesMentioning(WORK)).toEqual([]);
  }, 300_000);

  it('negative control: a marker that never comes fails start at the deadline, names it, and leaves nothing running', async () => {
    const r = await run('wrong-marker-profile.json', ['start', '--timeout', '15']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/node0[12]: console marker "ULTRACLOUD_FIXTURE_NEVER node=node0[12]": not seen by the deadline/);
    expect(r.stderr).toContain('ULTRACLOUD_FIXTURE_READY'); // the console tail shows what the node did print
    expect(processesMentioning(WORK)).toEqual([]);
  }, 120_000);

  it("guards eval prints every output's drvPath and syntax-checks every .nix file under nix/", async () => {
    const r = await run('profile.json', ['guards', 'eval']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^packages\.x86_64-linux\.node01-vm {2}\/nix\/store\/[a-z0-9]{32}-node01-vm\.drv/m);
    expect(r.stdout).toMatch(/^packages\.x86_64-linux\.node02-vm {2}\/nix\/store\/[a-z0-9]{32}-node02-vm\.drv/m);
    const parsed = readFileSync(path.join(WORK, 'guards/latest/parsed-files.txt'), 'utf8');
    for (const f of ['flake.nix', 'common.nix', 'node06.nix', 'storage-node05.nix', 'vm-guest-image.nix', 'vm-bench-guest-image.nix'])
      expect(parsed).toContain(path.join(REPO, 'nix/test-cluster', f));
  }, 120_000);

  it('guards build realises every guarded output in one nix build and prints the store paths', async () => {
    const r = await run('profile.json', ['--json', 'guards', 'build']);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out.outputs)).toEqual(['node01', 'node02']);
    for (const g of Object.values(out.outputs) as { out: string }[]) expect(existsSync(`${g.out}/kernel`)).toBe(true);
    expect(runLog(out.dir).filter((l) => l.argv?.[0] === 'nix' && l.argv.includes('build'))).toHaveLength(1);
  }, 120_000);

  it('negative control: a broken attribute fails guards eval (exit 1) naming it', async () => {
    const r = await run('broken-eval-profile.json', ['guards', 'eval']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('node03: packages.x86_64-linux.node03-vm does not evaluate: fixture node03 is broken on purpose');
  }, 120_000);

  it('negative control: a failing derivation fails the build naming its node and showing its log', async () => {
    const r = await run('broken-build-profile.json', ['build']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(
      /node04: derivation node04-vm failed \(builder for '\/nix\/store\/\S+-node04-vm\.drv' failed with exit code 3\)/,
    );
    expect(r.stderr).toContain('node04-vm> fixture: node04 is broken on purpose');
    const result = JSON.parse(readFileSync(path.join(WORK, 'build/latest/result.json'), 'utf8'));
    expect(result).toMatchObject({ status: 'failed', success: false });
  }, 120_000);
});
