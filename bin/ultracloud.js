#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm ci` (the prepare script).
import { existsSync } from 'node:fs';
const entry = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('ultracloud: dist/ is missing; run `npm ci` (or `npm run build`) in the repository first.\n');
  process.exit(2);
}
await import(entry.href);
