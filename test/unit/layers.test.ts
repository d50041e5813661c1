import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

const CONFIG = path.join(REPO, '.dependency-cruiser.cjs');
const DEPCRUISE = path.join(REPO, 'node_modules/.bin/depcruise');

/** A compiled tree with the given files (path -> source), checked with the repo's rule file. */
async function cruise(files: Record<string, string>) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'uc-layers-'));
  for (const [f, src] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), src);
  }
  return execa(DEPCRUISE, ['--config', CONFIG, 'dist'], { cwd: root, reject: false });
}

describe('layering rule (dependency-cruiser on dist/)', () => {
  it('fails when a lower layer imports a higher one, naming both modules', async () => {
    const r = await cruise({
      'dist/core/clock.js': "import { x } from '../cluster/node.js';\nexport const y = x;\n",
      'dist/cluster/node.js': 'export const x = 1;\n',
    });
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(/no-upward-import-from-core: dist\/core\/clock\.js → dist\/cluster\/node\.js/);
  });

  it('fails when peers of one layer import each other', async () => {
    const r = await cruise({
      'dist/images/a.js': "import { b } from '../budget/b.js';\nexport const a = b;\n",
      'dist/budget/b.js': 'export const b = 1;\n',
    });
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toContain('no-upward-import-from-images');
  });

  it('passes imports that go down, and the real tree', async () => {
    const ok = await cruise({
      'dist/lanes/a.js': "import { b } from '../core/b.js';\nexport const a = b;\n",
      'dist/core/b.js': 'export const b = 1;\n',
    });
    expect(ok.exitCode, ok.stdout).toBe(0);
    const real = await execa(DEPCRUISE, ['--config', CONFIG, 'dist'], { cwd: REPO, reject: false });
    expect(real.exitCode, real.stdout).toBe(0);
  });
});
