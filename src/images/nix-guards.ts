import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import type { Logger } from 'pino';
import type { LoadedProfile } from '../config/profile.js';
import { CheckFailed } from '../core/errors.js';
import { requireTools } from '../host/tools.js';
import { evalDrvPaths, flakeTarget, nixBuild, nixVersion, nodeAttribute, tail } from './nix-flake.js';

/**
 * The seeds' canonical-profile-eval-guards / -build-guards: every canonical output (each node's
 * image plus the profile's extra guard outputs: ISO, storage nodes, helper images) must
 * evaluate, and (build) realise, before any long-running harness work starts.
 */
export function guardOutputs(profile: LoadedProfile): Record<string, string> {
  const src = flakeTarget(profile).src;
  return {
    ...Object.fromEntries(profile.nodes.map((n) => [n.name, nodeAttribute(src.attribute, n.name)])),
    ...Object.fromEntries(src.guards.map((a) => [a, a])),
  };
}

const SKIP = new Set(['node_modules', '.git', 'work', 'dist', 'result']);

export async function nixFilesUnder(dirs: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      if (SKIP.has(e.name)) continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.nix')) out.push(p);
    }
  };
  for (const d of new Set(dirs)) if (existsSync(d)) await walk(d);
  return out.sort();
}

/** `nix-instantiate --parse` on every file; reports every file that does not parse, not just the first. */
export async function parseCheck(files: string[]): Promise<void> {
  await requireTools('nix-instantiate');
  const broken: string[] = [];
  for (const f of files) {
    const r = await execa('nix-instantiate', ['--parse', f], { reject: false, stdout: 'ignore', stdin: 'ignore' });
    if (r.exitCode !== 0) broken.push(`${f}: ${tail(String(r.stderr), 4).replace(/\n\s*\n/g, '\n')}`);
  }
  if (broken.length) throw new CheckFailed(`${broken.length} of ${files.length} .nix file(s) do not parse:\n${broken.join('\n')}`);
}

/** The .nix files the guards check: the repo's nix/ tree plus the profile's own flake directory. */
export function guardNixDirs(profile: LoadedProfile, repoRoot: string): string[] {
  const { localDir } = flakeTarget(profile);
  return [path.join(repoRoot, 'nix'), ...(localDir ? [localDir] : [])];
}

export interface GuardOutput {
  attribute: string;
  drvPath: string;
  out?: string;
}

export async function evalGuards(profile: LoadedProfile, log: Logger): Promise<Record<string, GuardOutput>> {
  const { flake, overrides } = flakeTarget(profile);
  const nix = await nixVersion();
  const attrs = guardOutputs(profile);
  log.info(`nix ${nix.version}: evaluating ${Object.keys(attrs).length} canonical output(s) of ${flake}`);
  const drvs = await evalDrvPaths(flake, overrides, attrs, log);
  return Object.fromEntries(Object.entries(attrs).map(([label, attribute]) => [label, { attribute, drvPath: drvs[label]! }]));
}

/** Realise every guarded output in ONE nix build (after they all evaluated). */
export async function buildGuards(
  profile: LoadedProfile,
  evaluated: Record<string, GuardOutput>,
  log: Logger,
  transcript?: (line: string) => void,
): Promise<Record<string, GuardOutput>> {
  const { flake, overrides } = flakeTarget(profile);
  const drvPaths = Object.fromEntries(Object.entries(evaluated).map(([l, g]) => [l, g.drvPath]));
  const outByDrv = await nixBuild(
    Object.values(evaluated).map((g) => `${flake}#${g.attribute}`),
    { overrides, drvPaths, log, transcript },
  );
  return Object.fromEntries(Object.entries(evaluated).map(([l, g]) => [l, { ...g, out: outByDrv.get(g.drvPath) }]));
}
