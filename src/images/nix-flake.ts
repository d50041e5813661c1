import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { Logger } from 'pino';
import type { LoadedProfile, NixImageSource } from '../config/profile.js';
import { CheckFailed, UsageError } from '../core/errors.js';
import { requireTools } from '../host/tools.js';

/** Flakes are still experimental in every nix we support: enable them per call, not in the user's nix.conf. */
export const NIX_FLAGS = ['--extra-experimental-features', 'nix-command flakes'];

export interface NixVersion {
  version: string;
  /** `nix build --print-out-paths` appeared in 2.9; the harness reads `--json`, which 2.4+ has. */
  printOutPaths: boolean;
}

export function parseNixVersion(text: string): NixVersion {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!m) throw new UsageError(`cannot read a version from \`nix --version\`: ${text.trim()}`);
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (major < 2 || (major === 2 && minor < 4))
    throw new UsageError(`nix ${m[0]} has no flakes; the nix image provider needs nix >= 2.4 (Debian 12's nix-bin is 2.8)`);
  return { version: m[0], printOutPaths: major > 2 || minor >= 9 };
}

export async function nixVersion(): Promise<NixVersion> {
  await requireTools('nix');
  const r = await execa('nix', ['--version'], { reject: false });
  return parseNixVersion(String(r.stdout));
}

/**
 * Local build parallelism, as the seeds' wrappers do it: derived from the CPU count (jobs x
 * cores ~= CPUs), overridden by ULTRACLOUD_LOCAL_NIX_* and then PHOTON_CLUSTER_NIX_*.
 */
export function nixParallelism(env: NodeJS.ProcessEnv = process.env, cpus = os.availableParallelism()): { maxJobs: number; cores: number } {
  const pick = (names: string[], fallback: number): number => {
    for (const n of names) {
      const v = env[n];
      if (v === undefined || v === '') continue;
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`${n}=${v}: expected a positive integer`);
      return Number(v);
    }
    return fallback;
  };
  const defaultJobs = Math.max(1, Math.round(Math.sqrt(cpus)));
  const maxJobs = pick(['ULTRACLOUD_LOCAL_NIX_MAX_JOBS', 'PHOTON_CLUSTER_NIX_MAX_JOBS'], defaultJobs);
  const cores = pick(['ULTRACLOUD_LOCAL_NIX_BUILD_CORES', 'PHOTON_CLUSTER_NIX_BUILD_CORES'], Math.max(1, Math.floor(cpus / maxJobs)));
  return { maxJobs, cores };
}

/** A local directory becomes path: (or git+file: in a git checkout, so untracked build trees stay out). */
export function localFlakeRef(dir: string): string {
  const abs = path.resolve(dir);
  return existsSync(path.join(abs, '.git')) ? `git+file://${abs}` : `path:${abs}`;
}

const SCHEME = /^[a-z][a-z0-9+]*:/;

export function nixSource(profile: LoadedProfile): NixImageSource {
  if (profile.image.source !== 'nix')
    throw new UsageError(`profile ${profile.name} builds its images with "${profile.image.source}", not nix`);
  return profile.image;
}

export interface FlakeTarget {
  src: NixImageSource;
  /** A reference nix accepts; directories resolve against the profile file as path: (the harness's own flakes must see new files). */
  flake: string;
  /** The flake's directory when it is local (the guards syntax-check it). */
  localDir: string | null;
  /** --override-input pairs: the profile's, then ULTRACLOUD_MONOREPO for the `ultracloud` input. */
  overrides: Record<string, string>;
}

export function flakeTarget(profile: LoadedProfile, env: NodeJS.ProcessEnv = process.env): FlakeTarget {
  const src = nixSource(profile);
  const overrides = { ...src.overrideInputs };
  const mono = env.ULTRACLOUD_MONOREPO;
  if (mono) {
    if (SCHEME.test(mono)) overrides.ultracloud = mono;
    else if (existsSync(path.join(mono, 'flake.nix'))) overrides.ultracloud = localFlakeRef(mono);
    else throw new UsageError(`ULTRACLOUD_MONOREPO=${mono}: not a flake reference and no flake.nix there`);
  }
  if (SCHEME.test(src.flake)) return { src, flake: src.flake, localDir: null, overrides };
  const dir = path.resolve(profile.dir, src.flake);
  if (!existsSync(path.join(dir, 'flake.nix')))
    throw new UsageError(`profile ${profile.name}: image.flake ${src.flake} -> ${dir} has no flake.nix`);
  return { src, flake: `path:${dir}`, localDir: dir, overrides };
}

/** Input overrides, and never a rewritten flake.lock in the user's tree (`nix flake lock` is theirs to run). */
export function overrideArgs(overrides: Record<string, string>): string[] {
  return ['--no-write-lock-file', ...Object.entries(overrides).flatMap(([k, v]) => ['--override-input', k, v])];
}

/** Split a dotted attribute path into names (quoted names may contain dots). */
export function attrNames(attr: string): string[] {
  return [...attr.matchAll(/"([^"]+)"|([^.]+)/g)].map((m) => m[1] ?? m[2]!);
}

export function nodeAttribute(template: string, node: string): string {
  return template.replaceAll('{node}', node);
}

/** A nix string literal for an attribute name. */
const nixName = (n: string) => JSON.stringify(n).replace(/\$\{/g, '\\${');

/**
 * One `nix eval` per top-level output (packages, nixosConfigurations, ...) returning every
 * requested attribute's drvPath. Missing attributes and `throw`s are caught per attribute so
 * the error names it; anything uncatchable fails the eval and is retried one by one.
 */
export async function evalDrvPaths(
  flake: string,
  overrides: Record<string, string>,
  attrs: Record<string, string>,
  log: Logger,
): Promise<Record<string, string>> {
  const groups = new Map<string, [string, string[]][]>();
  for (const [label, attr] of Object.entries(attrs)) {
    const [top, ...rest] = attrNames(attr);
    groups.set(top!, [...(groups.get(top!) ?? []), [label, rest]]);
  }
  const out: Record<string, string> = {};
  for (const [top, members] of groups) {
    const body = members
      .map(([label, rest]) => {
        const p = rest.map(nixName).join('.');
        const get = p ? `o.${p}` : 'o';
        const has = p ? `o ? ${p}` : 'true';
        return `${nixName(label)} = if !(${has}) then "!missing" else let r = builtins.tryEval (${get}).drvPath; in if r.success then r.value else "!throws";`;
      })
      .join(' ');
    const args = [...NIX_FLAGS, 'eval', '--json', ...overrideArgs(overrides), `${flake}#${top}`, '--apply', `o: { ${body} }`];
    log.debug({ argv: ['nix', ...args] }, `nix eval ${top} (${members.length} attribute(s))`);
    const r = await execa('nix', args, { reject: false, stdin: 'ignore' });
    if (r.exitCode !== 0) {
      // Uncatchable (type error, infinite recursion, bad flake): find the first attribute that breaks.
      for (const [label] of members) await evalDrvPath(flake, overrides, attrs[label]!, label);
      throw new CheckFailed(`nix eval of ${flake}#${top} failed${inputHint(String(r.stderr))}:\n${tail(String(r.stderr), 20)}`);
    }
    const res = JSON.parse(String(r.stdout)) as Record<string, string>;
    for (const [label] of members) {
      const v = res[label]!;
      if (v === '!missing') throw new CheckFailed(`${label}: attribute ${attrs[label]} does not exist in ${flake}`);
      if (v === '!throws') await evalDrvPath(flake, overrides, attrs[label]!, label); // rethrows with nix's own message
      out[label] = v;
    }
  }
  return out;
}

/** Evaluate one attribute's drvPath on its own (the precise error message, named). */
export async function evalDrvPath(flake: string, overrides: Record<string, string>, attr: string, label: string): Promise<string> {
  const r = await execa('nix', [...NIX_FLAGS, 'eval', '--raw', ...overrideArgs(overrides), `${flake}#${attr}`, '--apply', 'd: d.drvPath'], {
    reject: false,
    stdin: 'ignore',
  });
  if (r.exitCode !== 0) {
    const err = String(r.stderr);
    const first =
      err
        .split('\n')
        .find((l) => l.startsWith('error:'))
        ?.replace(/^error:\s*/, '') ?? 'nix eval failed';
    throw new CheckFailed(`${label}: ${attr} does not evaluate: ${first}${inputHint(err)}\n${tail(err, 15)}`);
  }
  return String(r.stdout).trim();
}

/** A flake input that cannot be fetched is almost always the monorepo input not pointed anywhere yet. */
function inputHint(stderr: string): string {
  return /does not appear to be a git repository|unable to download|cannot fetch|getting status of|does not exist/.test(stderr)
    ? ' (a flake input could not be fetched: for the canonical profile set ULTRACLOUD_MONOREPO=/path/to/ultracloud-checkout, passed as --override-input ultracloud)'
    : '';
}

export function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * THE one `nix build` for a set of installables (drvPath -> output path): no link, JSON result, local builders only,
 * the host's parallelism, logs streamed line by line (build logs to run.log, the rest to the console).
 * On failure, each failed derivation is reported with the labels (nodes) whose closure holds it.
 */
export async function nixBuild(
  installables: string[],
  o: { overrides: Record<string, string>; drvPaths: Record<string, string>; log: Logger; transcript?: (line: string) => void },
): Promise<Map<string, string>> {
  const { maxJobs, cores } = nixParallelism();
  const args = [
    ...NIX_FLAGS,
    'build',
    '--no-link',
    '--json',
    '--print-build-logs',
    '--max-jobs',
    String(maxJobs),
    '--cores',
    String(cores),
    '--option',
    'builders',
    '',
    ...overrideArgs(o.overrides),
    ...installables,
  ];
  o.log.info(
    { argv: ['nix', ...args] },
    `nix build: ${installables.length} output(s) in one invocation (max-jobs ${maxJobs}, cores ${cores}, local builders only)`,
  );
  const child = execa('nix', args, { reject: false, stdin: 'ignore', buffer: { stdout: true, stderr: false } });
  const logLines: string[] = [];
  let partial = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      logLines.push(line);
      o.transcript?.(line);
      if (/^[^\s>]+> /.test(line)) o.log.debug(line);
      else if (line.trim()) o.log.info(`nix: ${line.replace(/^building '\/nix\/store\/[a-z0-9]{32}-(.+)\.drv'\.\.\.$/, 'building $1')}`);
    }
  });
  const r = await child;
  if (partial) logLines.push(partial);
  if (r.exitCode === 0) {
    // Results do not come back in installable order (nix 2.8): callers look them up by drvPath.
    const results = JSON.parse(String(r.stdout)) as { drvPath: string; outputs: Record<string, string> }[];
    return new Map(results.map((x) => [x.drvPath, x.outputs.out ?? Object.values(x.outputs)[0]!]));
  }
  throw new CheckFailed(await describeBuildFailure(logLines, o.drvPaths));
}

async function describeBuildFailure(lines: string[], drvPaths: Record<string, string>): Promise<string> {
  const failed = [
    ...new Set(lines.flatMap((l) => [...l.matchAll(/builder for '(\/nix\/store\/[^']+\.drv)' failed[^\n]*/g)].map((m) => m[1]!))),
  ];
  if (failed.length === 0) return `nix build failed:\n${tail(lines.join('\n'), 25)}`;
  const closures = new Map<string, Set<string>>();
  for (const [label, drv] of Object.entries(drvPaths)) {
    const q = await execa('nix-store', ['--query', '--requisites', drv], { reject: false });
    closures.set(label, new Set(String(q.stdout).split('\n')));
  }
  return failed
    .map((drv) => {
      const owners = [...closures].filter(([label, c]) => drvPaths[label] === drv || c.has(drv)).map(([label]) => label);
      const name = path
        .basename(drv)
        .replace(/^[a-z0-9]{32}-/, '')
        .replace(/\.drv$/, '');
      const own = lines.filter((l) => l.startsWith(`${name}> `)).slice(-20);
      const why = lines.find((l) => l.includes(drv) && l.includes('failed')) ?? '';
      return `${owners.length ? owners.join(', ') : 'no node'}: derivation ${name} failed (${why.replace(/^error: /, '').trim()})\n--- last lines of its build log (nix log ${drv}) ---\n${own.join('\n') || '(no output)'}`;
    })
    .join('\n');
}
