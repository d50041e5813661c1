#!/usr/bin/env node
// After `npm install`: the registry reachable here serves only this platform's builds of biome's
// native CLI, so npm leaves the other platforms' optional packages out of package-lock.json, and
// `npm ci` (what setup and CI run) then refuses the lock as out of sync. This lists them again
// (os/cpu/libc only: npm never installs them on a platform they do not fit). Usage: node scripts/fix-lockfile.js
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const platform = (name) => {
  const m = /^@biomejs\/cli-(\w+)-(\w+?)(-musl)?$/.exec(name);
  return m && { os: [m[1]], cpu: [m[2]], ...(m[3] ? { libc: ['musl'] } : {}) };
};
let added = 0;
for (const entry of Object.values(lock.packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${dep}`;
    if (lock.packages[key]) continue;
    const p = platform(dep);
    if (!p) throw new Error(`${dep} is missing from the lockfile and is not a biome platform package: resolve it by hand`);
    lock.packages[key] = { version, ...p, dev: true, license: 'MIT OR Apache-2.0', optional: true, engines: { node: '>=14.21.3' } };
    added++;
  }
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`fix-lockfile: ${added} optional platform package(s) listed`);
