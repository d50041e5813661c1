import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Profile } from '../../src/config/profile.js';
import { attrNames, nixParallelism, parseNixVersion } from '../../src/images/nix-flake.js';
import { parseCheck } from '../../src/images/nix-guards.js';

describe('nix provider pieces', () => {
  it('reads nix versions and knows where --print-out-paths starts', () => {
    expect(parseNixVersion('nix (Nix) 2.8.0')).toEqual({ version: '2.8.0', printOutPaths: false });
    expect(parseNixVersion('nix (Nix) 2.18.1')).toEqual({ version: '2.18.1', printOutPaths: true });
    expect(() => parseNixVersion('nix (Nix) 2.3.16')).toThrow(/no flakes/);
  });

  it('derives parallelism from the CPU count; ULTRACLOUD_ wins over PHOTON_CLUSTER_', () => {
    expect(nixParallelism({}, 2)).toEqual({ maxJobs: 1, cores: 2 });
    expect(nixParallelism({}, 16)).toEqual({ maxJobs: 4, cores: 4 });
    expect(nixParallelism({ PHOTON_CLUSTER_NIX_MAX_JOBS: '8', PHOTON_CLUSTER_NIX_BUILD_CORES: '2' }, 16)).toEqual({ maxJobs: 8, cores: 2 });
    expect(nixParallelism({ ULTRACLOUD_LOCAL_NIX_MAX_JOBS: '2', PHOTON_CLUSTER_NIX_MAX_JOBS: '8' }, 16)).toEqual({ maxJobs: 2, cores: 8 });
    expect(() => nixParallelism({ PHOTON_CLUSTER_NIX_MAX_JOBS: '0' }, 4)).toThrow(
      'PHOTON_CLUSTER_NIX_MAX_JOBS=0: expected a positive integer',
    );
  });

  it('splits attribute paths, keeping quoted names whole', () => {
    expect(attrNames('packages.x86_64-linux.node01-vm')).toEqual(['packages', 'x86_64-linux', 'node01-vm']);
    expect(attrNames('nixosConfigurations."a.b".config')).toEqual(['nixosConfigurations', 'a.b', 'config']);
  });

  it('refuses a node attribute without {node}, or with it in the first component', () => {
    const base = { name: 'x', nodes: [{ name: 'node01', roles: ['r'], ip: '10.0.0.1' }] };
    const bad = Profile.safeParse({ ...base, image: { source: 'nix', flake: '.', attribute: 'packages.x86_64-linux.vm' } });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]!.path).toEqual(['image', 'attribute']);
    expect(Profile.safeParse({ ...base, image: { source: 'nix', flake: '.', attribute: '{node}.vm' } }).success).toBe(false);
    expect(Profile.safeParse({ ...base, image: { source: 'nix', flake: '.', attribute: 'packages.x86_64-linux.{node}-vm' } }).success).toBe(
      true,
    );
  });

  it('the .nix syntax check names every file that does not parse (real nix-instantiate)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-nix-'));
    writeFileSync(path.join(dir, 'ok.nix'), '{ a = 1; }\n');
    writeFileSync(path.join(dir, 'bad.nix'), '{ a = ; }\n');
    writeFileSync(path.join(dir, 'worse.nix'), 'let in\n');
    await expect(parseCheck([path.join(dir, 'ok.nix')])).resolves.toBeUndefined();
    const err = await parseCheck(['ok', 'bad', 'worse'].map((f) => path.join(dir, `${f}.nix`))).catch((e: Error) => e);
    expect(String(err)).toContain('2 of 3 .nix file(s) do not parse');
    expect(String(err)).toContain(`${path.join(dir, 'bad.nix')}:`);
    expect(String(err)).toContain(`${path.join(dir, 'worse.nix')}:`);
  });
});
