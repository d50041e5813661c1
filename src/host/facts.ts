import os from 'node:os';
import type { HostFacts } from '../core/result.js';

export function hostFacts(accel?: string): HostFacts {
  return {
    hostname: os.hostname(),
    kernel: os.release(),
    arch: os.arch(),
    cpus: os.cpus().length,
    memoryMiB: Math.round(os.totalmem() / 1048576),
    node: process.version,
    ...(accel ? { accel } : {}),
  };
}
