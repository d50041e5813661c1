#!/usr/bin/env node
// CI's last resort: every QEMU and vde_switch the harness left running anywhere under the given
// directories (any state dir, any work root the tests used), found by their pidfiles and stopped
// by pid. Prints what it had to stop and exits 1 if there was anything: a test leaked it.
// Usage: node scripts/reap.js DIR...
import { readdirSync } from 'node:fs';
import path from 'node:path';

const { ownedPid, terminate } = await import(new URL('../dist/core/proc.js', import.meta.url).href);

/** Pidfiles under `dir`, not following symlinks. */
function pidfiles(dir) {
  const out = [];
  let entries = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...pidfiles(p));
    else if (e.isFile() && (e.name === 'qemu.pid' || e.name === 'vde_switch.pid')) out.push(p);
  }
  return out;
}

const leaked = [];
for (const dir of process.argv.slice(2)) {
  // Guests first, the switches they are plugged into last.
  const files = pidfiles(path.resolve(dir)).sort((a, b) => (a.endsWith('vde_switch.pid') ? 1 : 0) - (b.endsWith('vde_switch.pid') ? 1 : 0));
  for (const f of files) {
    const pid = await ownedPid(f, f.endsWith('vde_switch.pid') ? '--pidfile' : '-pidfile');
    if (!pid) continue;
    const how = await terminate(pid, 5000);
    leaked.push(`${f}: pid ${pid} (${how})`);
  }
}
if (leaked.length) {
  console.error(`reap: stopped ${leaked.length} process(es) the tests left running:\n  ${leaked.join('\n  ')}`);
  process.exit(1);
}
console.log('reap: nothing was left running');
