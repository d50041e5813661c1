import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { ownedPid, terminate } from '../core/proc.js';

/** The cluster's private L2 network: one vde_switch per state dir, found again by its pidfile. */
export function switchFiles(vdeDir: string) {
  return { dir: vdeDir, ctl: path.join(vdeDir, 'ctl'), mgmt: path.join(vdeDir, 'mgmt'), pidfile: path.join(vdeDir, 'vde_switch.pid') };
}

export async function switchPid(vdeDir: string): Promise<number | null> {
  const f = switchFiles(vdeDir);
  return ownedPid(f.pidfile, '--pidfile');
}

/** Start the switch unless it runs; returns whether this call started it. */
export async function ensureSwitch(vdeDir: string): Promise<{ started: boolean; pid: number }> {
  const running = await switchPid(vdeDir);
  if (running) return { started: false, pid: running };
  const f = switchFiles(vdeDir);
  await fs.mkdir(vdeDir, { recursive: true });
  await fs.rm(f.ctl, { recursive: true, force: true });
  await fs.rm(f.mgmt, { force: true });
  await execa('vde_switch', ['--sock', f.ctl, '--mgmt', f.mgmt, '--pidfile', f.pidfile, '--daemon'], { stdin: 'ignore' });
  const pid = await switchPid(vdeDir);
  if (!pid) throw new Error(`vde_switch did not start (no live pid in ${f.pidfile})`);
  return { started: true, pid };
}

export async function stopSwitch(vdeDir: string): Promise<boolean> {
  const pid = await switchPid(vdeDir);
  if (!pid) return false;
  await terminate(pid, 3000);
  await fs.rm(switchFiles(vdeDir).pidfile, { force: true });
  return true;
}
