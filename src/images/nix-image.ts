import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { LoadedProfile } from '../config/profile.js';
import { writeFileAtomic } from '../core/atomic.js';
import { UsageError } from '../core/errors.js';
import { evalDrvPaths, flakeTarget, nixBuild, nixVersion, nodeAttribute } from './nix-flake.js';
import type { BootArtifacts, BuiltImages } from './types.js';

const Manifest = z.object({
  source: z.literal('nix'),
  flake: z.string(),
  overrides: z.record(z.string(), z.string()),
  nixVersion: z.string(),
  builtAt: z.string(),
  nodes: z.record(
    z.string(),
    z.object({ attribute: z.string(), drvPath: z.string(), out: z.string(), artifacts: z.custom<BootArtifacts>() }),
  ),
});
type Manifest = z.infer<typeof Manifest>;

/**
 * The layout every node output must have (what nix/test-cluster/vm-guest-image.nix and the
 * test fixture produce): kernel, optional initrd, optional cmdline, optional disk.qcow2.
 */
export async function readBootLayout(out: string, node: string): Promise<BootArtifacts> {
  const at = (f: string) => path.join(out, f);
  if (!existsSync(at('kernel'))) {
    const has = await fs.readdir(out).catch(() => [] as string[]);
    throw new UsageError(
      `${node}: ${out} is not a bootable node output: no kernel (has: ${has.join(', ') || 'nothing'}); expected kernel, initrd, cmdline, disk.qcow2`,
    );
  }
  const cmdline = existsSync(at('cmdline')) ? (await fs.readFile(at('cmdline'), 'utf8')).trim() : 'console=ttyS0';
  return {
    kernel: at('kernel'),
    ...(existsSync(at('initrd')) ? { initrd: at('initrd') } : {}),
    ...(existsSync(at('disk.qcow2')) ? { baseDisk: at('disk.qcow2') } : {}),
    cmdline,
  };
}

/**
 * Every node of the profile from ONE `nix build`: evaluate the drvPaths (to map outputs back
 * to nodes), build them all in one invocation, register GC roots beside the manifest.
 * Nix is the cache: an unchanged flake builds nothing.
 */
export async function buildNixImages(
  profile: LoadedProfile,
  imagesDir: string,
  log: Logger,
  transcript?: (line: string) => void,
): Promise<BuiltImages> {
  const { src, flake, overrides } = flakeTarget(profile);
  const nix = await nixVersion();
  log.info(
    `nix ${nix.version}: flake ${flake}${
      Object.keys(overrides).length
        ? ` (overrides: ${Object.entries(overrides)
            .map(([k, v]) => `${k}=${v}`)
            .join(', ')})`
        : ''
    }`,
  );
  const attrs = Object.fromEntries(profile.nodes.map((n) => [n.name, nodeAttribute(src.attribute, n.name)]));
  const drvPaths = await evalDrvPaths(flake, overrides, attrs, log);
  const outByDrv = await nixBuild(
    Object.values(attrs).map((a) => `${flake}#${a}`),
    { overrides, drvPaths, log, transcript },
  );

  const nodes: Manifest['nodes'] = {};
  for (const [node, attribute] of Object.entries(attrs)) {
    const out = outByDrv.get(drvPaths[node]!);
    if (!out) throw new Error(`${node}: nix build reported no output for ${drvPaths[node]} (got: ${[...outByDrv.keys()].join(', ')})`);
    nodes[node] = { attribute, drvPath: drvPaths[node]!, out, artifacts: await readBootLayout(out, node) };
  }
  const id = `nix-${createHash('sha256')
    .update(JSON.stringify(Object.entries(nodes).map(([n, v]) => [n, v.out])))
    .digest('hex')
    .slice(0, 16)}`;
  const dir = path.join(imagesDir, id);
  const reused = existsSync(path.join(dir, 'manifest.json'));
  await fs.mkdir(path.join(dir, 'gcroots'), { recursive: true });
  // --no-link leaves outputs collectable; a root per node keeps a running guest's kernel alive until prune removes the build.
  for (const [node, v] of Object.entries(nodes))
    await execa('nix-store', ['--realise', v.out, '--add-root', path.join(dir, 'gcroots', node), '--indirect'], { stdout: 'ignore' });
  const manifest: Manifest = { source: 'nix', flake, overrides, nixVersion: nix.version, builtAt: new Date().toISOString(), nodes };
  await writeFileAtomic(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { id, reused, nodes: Object.fromEntries(Object.entries(nodes).map(([n, v]) => [n, v.artifacts])) };
}

export async function nixImageById(imagesDir: string, id: string): Promise<BuiltImages> {
  const file = path.join(imagesDir, id, 'manifest.json');
  const raw = await fs.readFile(file, 'utf8').catch(() => null);
  if (!raw) throw new UsageError(`nix image build ${id} is gone (${file}); run: ultracloud build`);
  const m = Manifest.parse(JSON.parse(raw));
  for (const [n, v] of Object.entries(m.nodes))
    if (!existsSync(v.out)) throw new UsageError(`${n}: ${v.out} was garbage-collected; run: ultracloud build`);
  return { id, reused: true, nodes: Object.fromEntries(Object.entries(m.nodes).map(([n, v]) => [n, v.artifacts])) };
}
