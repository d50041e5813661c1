import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadProfile, profileIssues } from '../../src/config/load-profile.js';
import { expectedUnits, Profile } from '../../src/config/profile.js';
import { UsageError } from '../../src/core/errors.js';
import { SERVICE_PARAMS } from '../../src/services/index.js';
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

  it('names the field path of every problem in the bad fixture, a type error hiding nothing', () => {
    const err = (() => {
      try {
        loadProfile('test/fixtures/bad-profile.json');
      } catch (e) {
        return e as Error;
      }
      throw new Error('the bad profile loaded');
    })();
    expect(err).toBeInstanceOf(UsageError);
    const problems = err.message
      .split('\n')
      .slice(1)
      .map((l) => l.trim());
    expect(problems).toEqual([
      expect.stringMatching(/^nodes\[0\]\.memoryMiB: .*expected number/),
      'nodes[1].dependsOn[0]: unknown node "node09"',
    ]);
  });

  it('a wrongly typed service parameter is refused at load, naming its path', async () => {
    const raw = JSON.parse(readFileSync('profiles/lab/profile.json', 'utf8'));
    raw.services.chainfire.params.members = 'three';
    raw.services.flaredb.params.table = 'drop table;';
    const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-prof-'));
    writeFileSync(path.join(dir, 'profile.json'), JSON.stringify(raw));
    expect(profileIssues(raw, SERVICE_PARAMS).map((i) => i.path.join('.'))).toEqual([
      'services.chainfire.params.members',
      'services.flaredb.params.table',
    ]);
    const r = await cli(['--profile', path.join(dir, 'profile.json'), 'status']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/services\.chainfire\.params\.members: .*expected number/);
    expect(r.stderr).toMatch(/services\.flaredb\.params\.table: a PostgreSQL identifier/);
  });

  it('refuses a service the harness has no module for, and unknown params', () => {
    const raw = JSON.parse(readFileSync('profiles/lab/profile.json', 'utf8'));
    raw.services.quux = { unit: 'quux.service', roles: ['gateway'] };
    raw.services.iam.params.issuePth = '/v1/tokens';
    expect(profileIssues(raw, SERVICE_PARAMS).map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      expect.stringMatching(/^services\.iam\.params: Unrecognized key: "issuePth"/),
      expect.stringMatching(/^services\.quux: no service module "quux" in this harness \(known: chainfire, /),
    ]);
  });

  it("refuses cycles, the harness's own forward name, duplicate forwards, odd addresses and unit names a shell would read", () => {
    const issues = (p: unknown) => profileIssues(p).map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues({ ...base, nodes: [{ ...base.nodes[0], dependsOn: ['b'] }, base.nodes[1]] })).toEqual([
      'nodes.0.dependsOn: dependency cycle: a -> b -> a',
    ]);
    expect(
      issues({
        ...base,
        nodes: [
          {
            ...base.nodes[0],
            forwards: [
              { name: 'ssh', port: 2222 },
              { name: 'web', port: 80 },
              { name: 'web', port: 81 },
            ],
          },
          base.nodes[1],
        ],
      }),
    ).toEqual([
      'nodes.0.forwards.0.name: "ssh" is the harness\'s own forward',
      'nodes.0.forwards.2.name: duplicate forward "web" (also forwards[1])',
    ]);
    expect(issues({ ...base, nodes: [base.nodes[0], { ...base.nodes[1], ip: '010.000.000.002' }] })).toEqual([
      expect.stringMatching(/^nodes\.1\.ip: an IPv4 address like 10\.100\.0\.11 \(no leading zeros\)/),
    ]);
    expect(issues({ ...base, nodes: [base.nodes[0], { ...base.nodes[1], ip: '10.0.1.2' }] })).toEqual([
      'nodes.1.ip: 10.0.1.2 is outside the cluster subnet of 10.0.0.1/24',
    ]);
    expect(issues({ ...base, nodes: [base.nodes[0], { ...base.nodes[1], ip: '10.0.0.255' }] })).toEqual([
      "nodes.1.ip: 10.0.0.255 is the subnet's network or broadcast address",
    ]);
    expect(issues({ ...base, baseUnits: ['ssh.service; reboot'] })).toEqual([expect.stringMatching(/^baseUnits\.0: a systemd unit name/)]);
    expect(issues({ ...base, services: { x: { unit: '$(id).service', roles: ['cp'] } } })).toEqual([
      expect.stringMatching(/^services\.x\.unit: a systemd unit name/),
    ]);
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
      services: {
        db: { unit: 'db.service', roles: ['cp'] },
        all: { unit: 'all.service', roles: ['*'] },
        slow: { unit: 'slow.service', roles: ['*'], deferred: { readyWithinSec: 600 } },
      },
    });
    // A deferred service is placed (its lanes wait for it) but readiness does not wait for its unit.
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
