import { existsSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { REPO_ROOT } from '../config/load-profile.js';
import { UsageError } from '../core/errors.js';

/**
 * A harness module the image carries (the cluster's deployer): its compiled entry in dist/ and
 * everything it imports (zod included), bundled into one ESM file for the guest's Node 18, so the
 * cluster runs the harness's own code, and the image hash changes whenever that code does.
 */
export async function bundleHarnessModule(entry: string): Promise<string> {
  const file = path.join(REPO_ROOT, 'dist', entry);
  if (!existsSync(file)) throw new UsageError(`the image carries dist/${entry}, which does not exist: run \`npm run build\``);
  const r = await build({
    entryPoints: [file],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node18',
    write: false,
    // Smaller to parse on a TCG guest; names kept so stack traces stay readable.
    minify: true,
    keepNames: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  return r.outputFiles[0]!.text;
}
