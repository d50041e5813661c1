import path from 'node:path';
import { UsageError } from '../core/errors.js';

/**
 * Where things live; the env names are the ones the bash-era harness (the seeds) used. An empty
 * value is bad input, never "the current directory".
 */
export function resolveWorkRoot(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  const sources: [string, string | undefined][] = [
    ['--work-root', flag],
    ['ULTRACLOUD_WORK_ROOT', env.ULTRACLOUD_WORK_ROOT],
    ['PHOTON_CLUSTER_WORK_ROOT', env.PHOTON_CLUSTER_WORK_ROOT],
  ];
  for (const [name, v] of sources) {
    if (v === undefined) continue;
    if (v.trim() === '') throw new UsageError(`${name} is set but empty; give a directory (unset it for the default ./work)`);
    return path.resolve(v);
  }
  return path.resolve('work');
}

export interface ClusterPaths {
  workRoot: string;
  /** Per-node disks, pidfiles, QMP sockets, consoles: ${PHOTON_VM_DIR:-<work-root>/test-cluster/state}. */
  state: string;
  vde: string;
  images: string;
  keys: string;
}

/** The default (lab) profile uses `state`; other profiles get profile-suffixed siblings as in the seeds. */
export function clusterPaths(workRoot: string, profileName: string, env: NodeJS.ProcessEnv = process.env): ClusterPaths {
  const suffix = profileName === 'lab' ? '' : `-${profileName}`;
  const base = path.join(workRoot, 'test-cluster');
  return {
    workRoot,
    state: env.PHOTON_VM_DIR ? `${path.resolve(env.PHOTON_VM_DIR)}${suffix}` : path.join(base, `state${suffix}`),
    vde: env.PHOTON_CLUSTER_VDE_SWITCH_DIR
      ? `${path.resolve(env.PHOTON_CLUSTER_VDE_SWITCH_DIR)}${suffix}`
      : path.join(base, `vde-switch${suffix}`),
    images: path.join(workRoot, 'images'),
    keys: path.join(workRoot, 'keys'),
  };
}
