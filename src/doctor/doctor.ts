import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { errorMessage } from '../core/errors.js';
import { TOOLS, type ToolName, which } from '../host/tools.js';
import { NIX_FLAGS, type NixVersion, parseNixVersion } from '../images/nix-flake.js';
import { type AccelVerdict, accelVerdict } from '../vm/accel-probe.js';

export interface ToolCheck {
  tool: string;
  ok: boolean;
  path: string | null;
  package: string;
  neededFor: string;
  required: boolean;
}

export interface DoctorReport {
  ok: boolean;
  tools: ToolCheck[];
  nix: { present: boolean; version: string | null; flakes: boolean; printOutPaths: boolean; detail: string };
  disk: { path: string; freeGiB: number; ok: boolean; minFreeGiB: number };
  memory: { totalMiB: number; availableMiB: number; ok: boolean; minAvailableMiB: number };
  accel: AccelVerdict & { cached: boolean };
  missingPackages: string[];
}

/** `nix` is needed only for nix-sourced profiles; the lab needs mmdebstrap instead. */
export async function checkTools(imageSource: 'lab' | 'nix'): Promise<ToolCheck[]> {
  return Promise.all(
    (Object.keys(TOOLS) as ToolName[]).map(async (tool) => {
      const t = TOOLS[tool];
      const p = await which(tool);
      return { tool, ok: p !== null, path: p, package: t.pkg, neededFor: t.why, required: t.need === 'always' || t.need === imageSource };
    }),
  );
}

export async function nixFacts(): Promise<DoctorReport['nix']> {
  if (!(await which('nix')))
    return { present: false, version: null, flakes: false, printOutPaths: false, detail: 'nix not installed (apt-get install nix-bin)' };
  const v = await execa('nix', ['--version'], { reject: false });
  let parsed: NixVersion;
  try {
    parsed = parseNixVersion(String(v.stdout));
  } catch (err) {
    return { present: true, version: null, flakes: false, printOutPaths: false, detail: errorMessage(err) };
  }
  const { version, printOutPaths } = parsed;
  const flakes = await execa('nix', [...NIX_FLAGS, 'eval', '--impure', '--expr', '1 + 1'], { reject: false, timeout: 30000 });
  const ok = flakes.exitCode === 0 && flakes.stdout.trim() === '2';
  return {
    present: true,
    version,
    flakes: ok,
    printOutPaths,
    detail: ok
      ? `nix ${version}: nix-command and flakes usable`
      : `nix ${version}: evaluation failed: ${String(flakes.stderr).split('\n').pop()}`,
  };
}

/** statfs of the work root, or of its nearest existing parent before the first run. */
async function freeGiB(dir: string): Promise<{ path: string; freeGiB: number }> {
  let p = path.resolve(dir);
  for (;;) {
    try {
      const s = await fs.statfs(p);
      return { path: p, freeGiB: (s.bavail * s.bsize) / 2 ** 30 };
    } catch {
      const up = path.dirname(p);
      if (up === p) throw new Error(`cannot statfs ${dir}`);
      p = up;
    }
  }
}

function memAvailableMiB(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : Math.round(os.freemem() / 1048576);
}

export async function runDoctor(opts: {
  workRoot: string;
  imageSource: 'lab' | 'nix';
  refreshProbe?: boolean;
  minFreeGiB?: number;
  minAvailableMiB?: number;
}): Promise<DoctorReport> {
  const minFreeGiB = opts.minFreeGiB ?? 10;
  const minAvailableMiB = opts.minAvailableMiB ?? 6144;
  const [tools, nix, disk, accel] = await Promise.all([
    checkTools(opts.imageSource),
    nixFacts(),
    freeGiB(opts.workRoot),
    accelVerdict({ refresh: opts.refreshProbe }),
  ]);
  const memory = { totalMiB: Math.round(os.totalmem() / 1048576), availableMiB: memAvailableMiB(), minAvailableMiB, ok: false };
  memory.ok = memory.availableMiB >= minAvailableMiB;
  const diskCheck = { ...disk, freeGiB: Math.round(disk.freeGiB * 10) / 10, minFreeGiB, ok: disk.freeGiB >= minFreeGiB };
  const missingPackages = [...new Set(tools.filter((t) => !t.ok).map((t) => t.package))];
  const requiredOk = tools.every((t) => t.ok || !t.required) && (opts.imageSource !== 'nix' || nix.flakes);
  return {
    ok: requiredOk && diskCheck.ok && memory.ok && (accel.kvm.usable || accel.tcg.usable),
    tools,
    nix,
    disk: diskCheck,
    memory,
    accel,
    missingPackages,
  };
}

export function renderDoctor(r: DoctorReport): string {
  const mark = (ok: boolean, required = true) => (ok ? 'ok  ' : required ? 'MISS' : 'warn');
  const lines = ['tools:'];
  for (const t of r.tools)
    lines.push(
      `  [${mark(t.ok, t.required)}] ${t.tool.padEnd(20)} ${t.ok ? t.path : `missing: apt-get install ${t.package}`}  (${t.neededFor}${t.required ? '' : ', optional for this profile'})`,
    );
  lines.push(
    `nix:    ${r.nix.detail}${r.nix.present ? `; --print-out-paths ${r.nix.printOutPaths ? 'available' : 'unavailable (harness uses --json)'}` : ''}`,
  );
  lines.push(`disk:   [${mark(r.disk.ok)}] ${r.disk.freeGiB} GiB free under ${r.disk.path} (want >= ${r.disk.minFreeGiB} GiB)`);
  lines.push(
    `memory: [${mark(r.memory.ok)}] ${r.memory.availableMiB} MiB available of ${r.memory.totalMiB} MiB (want >= ${r.memory.minAvailableMiB} MiB)`,
  );
  const a = r.accel;
  lines.push(`kvm:    ${a.kvm.usable ? 'usable' : 'unusable'} (${a.kvm.reason})${a.cached ? ' [cached for this boot]' : ''}`);
  lines.push(`tcg:    ${a.tcg.usable ? 'usable' : 'unusable'} (${a.tcg.reason})`);
  lines.push(`accel:  ${a.chosen}${a.chosen === 'tcg' ? ' (auto picks tcg: the KVM probe failed; guests boot in ~45 s each)' : ''}`);
  if (r.missingPackages.length)
    lines.push(`fix:    apt-get install -y ${r.missingPackages.join(' ')}   (or: ultracloud doctor --fix, as root)`);
  lines.push(r.ok ? 'doctor: host is ready' : 'doctor: host is NOT ready (see MISS lines above)');
  return lines.join('\n');
}

/** Install missing Debian packages (root only); prints apt's output as it goes. */
export async function installPackages(pkgs: string[]): Promise<void> {
  if (pkgs.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`--fix needs root; run: sudo apt-get install -y ${pkgs.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await execa('apt-get', ['update', '-q'], { stdio: ['ignore', 2, 2], env });
  await execa('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...pkgs], { stdio: ['ignore', 2, 2], env });
}
