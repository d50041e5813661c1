import { describe, expect, it } from 'vitest';
import { loadProfile } from '../../src/config/load-profile.js';
import { expectedUnits, Profile } from '../../src/config/profile.js';
import { UsageError } from '../../src/core/errors.js';
import { cli } from '../helpers/cli.js';

const base = {
  name: 't',
  image: { source: 'lab', recipe: 'image' },
  nodes: [
    { name: 'a', roles: ['cp'], ip: '10.0.0.1' },
    { name: 'b', roles: ['worker'], ip: '10.0.0.2', dependsOn: ['a'] },
  ],
};

describe('profile schema', () => {
  it('loads the lab profile with six nodes and defaults applied', () => {
    const p = loadProfile('lab');
    expect(p.nodes.map((n) => n.name)).toEqual(['node01', 'node02', 'node03', 'node04', 'node05', 'node06']);
    expect(p.defaults.vcpus).toBeGreaterThan(0);
    expect(expectedUnits(p, p.nodes[0]!)).toContain('ssh.service');
  });

  it('names the field path of every problem in the bad fixture', () => {
    expect(() => loadProfile('test/fixtures/bad-profile.json')).toThrow(UsageError);
    try {
      loadProfile('test/fixtures/bad-profile.json');
    } catch (err) {
      const msg = (err as Error).message;
      expect(msg).toMatch(/nodes\[0\]\.memoryMiB: .*expected number/);
    }
  });

  it('rejects duplicate names and ips, bad ips, unknown service roles and unknown keys', () => {
    const dup = Profile.safeParse({ ...base, nodes: [base.nodes[0], { ...base.nodes[0] }] });
    expect(dup.success).toBe(false);
    expect(JSON.stringify(dup.error?.issues)).toMatch(/duplicate node name/);
    expect(JSON.stringify(dup.error?.issues)).toMatch(/duplicate ip/);
    expect(Profile.safeParse({ ...base, nodes: [{ ...base.nodes[0], ip: '10.0.0.300' }] }).success).toBe(false);
    const svc = Profile.safeParse({ ...base, services: { x: { unit: 'x.service', roles: ['nope'] } } });
    expect(svc.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'services.x.roles.0: no node has role "nope" (roles: cp, worker)',
    ]);
    const dep = Profile.safeParse({ ...base, nodes: [base.nodes[0], { ...base.nodes[1], dependsOn: ['zz'] }] });
    expect(dep.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual(['nodes.1.dependsOn.0: unknown node "zz"']);
    expect(Profile.safeParse({ ...base, surprise: 1 }).success).toBe(false);
    expect(Profile.safeParse({ ...base, services: { x: { unit: 'x', roles: ['cp'] } } }).success).toBe(false);
  });

  it('places services by role and derives expected units', () => {
    const p = Profile.parse({
      ...base,
      baseUnits: ['ssh.service'],
      services: { db: { unit: 'db.service', roles: ['cp'] }, all: { unit: 'all.service', roles: ['*'] } },
    });
    expect(expectedUnits(p, p.nodes[0]!)).toEqual(['ssh.service', 'db.service', 'all.service']);
    expect(expectedUnits(p, p.nodes[1]!)).toEqual(['ssh.service', 'all.service']);
  });

  it('the CLI refuses a bad profile with exit 2 and the field path, before doing anything', async () => {
    const r = await cli(['--profile', './test/fixtures/bad-profile.json', 'doctor']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/nodes\[0\]\.memoryMiB/);
    expect(r.stdout).toBe('');
  });

  it('the CLI refuses a non-positive timeout or line count with exit 2', async () => {
    for (const args of [
      ['start', '--timeout', 'abc'],
      ['stop', '--timeout', '0'],
      ['logs', 'node01', '-n', '-3'],
    ]) {
      const r = await cli(args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/expected a positive number/);
    }
  });
});

describe('port contract', () => {
  it('refuses exposing a UDP port (host forwards are TCP only)', () => {
    const r = Profile.safeParse({
      ...base,
      services: { dns: { unit: 'dns.service', roles: ['cp'], ports: [{ name: 'dns', port: 53, protocol: 'udp', expose: true }] } },
    });
    expect(r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'services.dns.ports.0.expose: only TCP ports can be forwarded to the host (expose with protocol udp)',
    ]);
  });
});
