import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

describe('package-lock.json', () => {
  it('lists every optional dependency of every locked package (npm ci refuses the lock otherwise; fix: node scripts/fix-lockfile.js)', () => {
    const lock = JSON.parse(readFileSync(path.join(REPO, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { optionalDependencies?: Record<string, string> }>;
    };
    const missing = Object.values(lock.packages).flatMap((e) =>
      Object.keys(e.optionalDependencies ?? {}).filter((d) => !lock.packages[`node_modules/${d}`]),
    );
    expect(missing).toEqual([]);
  });
});
