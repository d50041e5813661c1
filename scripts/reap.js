#!/usr/bin/env node
// CI's last resort: every QEMU, vde_switch and host-forward ssh the harness left running anywhere
// under the given directories (any state dir, any work root the tests used), found by their
// pidfiles and stopped by pid. Prints what it had to stop and exits 1 if there was anything: a
// test leaked it.
// Usage: node scripts/reap.js DIR...
import { readdirSync } from 'node:fs';
import path from 'node:path';

const { ownedPid, terminate } = await import(new URL('../dist/core/proc.js', import.meta.url).href);

/** Per pidfile name: how its process's argv proves it ours (the flag, and the file after it). */
const OWNER = {
  'qemu.pid': (f) => [f, '-pidfile', f],
  'vde_switch.pid': (f) => [f, '--pidfile', f],
  'ssh.pid': (f) => [f, '-E', path.join(path.dirname(f), 'ssh.log')],
};

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
    else if (e.isFile() && Object.hasOwn(OWNER, e.name)) out.push(p);
  }
  return out;
}

const leaked = [];
for (const dir of process.argv.slice(2)) {
  // Forwards and guests first, the switches they are plugged into last.
  const files = pidfiles(path.resolve(dir)).sort((a, b) => (a.endsWith('vde_switch.pid') ? 1 : 0) - (b.endsWith('vde_switch.pid') ? 1 : 0));
  for (const f of files) {
    const pid = await ownedPid(...OWNER[path.basename(f)](f));
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
