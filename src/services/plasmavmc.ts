import type { Logger } from 'pino';
import { z } from 'zod';
import type { Node } from '../cluster/node.js';
import { StopWaiting, waitFor } from '../core/retry.js';
import { seconds } from '../core/time.js';
import { defineService } from './service.js';
import { ControlApiClient, type TenantToken } from './tenant-api.js';

const fileUrl = z.string().regex(/^file:\/\/\/\S+$/, 'a file:/// URL on the workers');
export const VmImage = z.strictObject({ kernel: fileUrl, initrd: fileUrl });
export type VmImage = z.output<typeof VmImage>;

const Params = z.strictObject({
  /** The inner guest every worker carries: the image the lanes boot (kernel + busybox initramfs). */
  image: VmImage,
  /** What the inner guest prints on its console when its userspace runs. */
  readyMarker: z
    .string()
    .regex(/^[A-Z][A-Z0-9_]{3,}$/)
    .default('ULTRACLOUD_INNER_READY'),
  vmMemoryMiB: z.number().int().min(64).max(2048).default(128),
});
type Params = z.output<typeof Params>;

export interface Worker {
  name: string;
  ip: string;
  accel: 'kvm' | 'tcg';
  accelReason: string;
  memoryMiB: number;
  agentPort: number;
}

/** Each object's size and sha256, as plasmavmc read it at import (absent for file:// images). */
export interface ImageDigest {
  sha256: string;
  bytes: number;
}

export interface Image {
  id: string;
  name: string;
  kernel: string;
  initrd: string;
  digests: { kernel?: ImageDigest; initrd?: ImageDigest };
}

export interface Nic {
  port: string;
  network: string;
  mac: string;
  ip: string;
  tap: string;
}

/** A coronafs volume as the VM's QEMU reaches it (NBD). */
export interface Disk {
  volume: string;
  host: string;
  port: number;
  kind: 'controller' | 'local';
  node: string;
}

/** What plasmavmc reports after a live migration (QEMU's own figures from the source). */
export interface MigrationSummary {
  vm: string;
  from: string;
  to: string;
  wallMs: number;
  qemuTotalMs: number;
  downtimeMs: number;
  ramBytes: number;
  disks: Disk[];
}

export interface Vm {
  id: string;
  name: string;
  worker: string;
  nics: Nic[];
  disks: Disk[];
  desired: string;
  generation: number;
  status: { state: string; reason?: string; accel?: string; unit?: string };
}

/** Where a boot starts in a VM's console log (the agent writes it before every start). */
const BOOT_LINE = '=== plasmavmc: start';
const INIT_LINE = /Run \/init as init process/;

/**
 * plasmavmc's control API (VMs placed on workers, run by each worker's agent), spoken to as a
 * tenant with an iam token, on the first control-plane node that runs it.
 */
export class PlasmavmcClient extends ControlApiClient<Params> {
  get params(): Params {
    return this.svc.params;
  }

  /** One API node's /health: which workers it sees registered, with their accelerator. */
  async health(node: Node): Promise<{ workers: { name: string; accel: string }[] }> {
    return this.healthOf(node);
  }

  async workers(who: TenantToken): Promise<Worker[]> {
    return (await this.api.ok<{ workers: Worker[] }>(who, 'GET', '/v1/workers')).workers;
  }

  /** file:/// URLs on the workers, or http:// URLs of objects (plasmavmc records each object's digest). */
  async importImage(who: TenantToken, name: string, image: { kernel: string; initrd: string }): Promise<Image> {
    return this.api.ok(who, 'POST', '/v1/images', { name, ...image });
  }

  async images(who: TenantToken): Promise<Image[]> {
    return (await this.api.ok<{ images: Image[] }>(who, 'GET', '/v1/images')).images;
  }

  async createVm(
    who: TenantToken,
    spec: { name: string; image: string; worker: string; ports?: string[]; volumes?: string[]; memoryMiB?: number },
  ): Promise<Vm> {
    return this.api.ok<Vm>(who, 'POST', '/v1/vms', { memoryMiB: this.svc.params.vmMemoryMiB, ...spec });
  }

  async vm(who: TenantToken, id: string): Promise<Vm> {
    return this.api.ok<Vm>(who, 'GET', `/v1/vms/${id}`);
  }

  async vms(who: TenantToken): Promise<Vm[]> {
    return (await this.api.ok<{ vms: Vm[] }>(who, 'GET', '/v1/vms')).vms;
  }

  /** A fresh boot of the VM on its worker (a new generation): its volumes and ports stay. */
  async restart(who: TenantToken, id: string): Promise<Vm> {
    return this.api.ok(who, 'POST', `/v1/vms/${id}/restart`);
  }

  /** Live migration to another worker (the API waits for the outcome); the VM keeps its id, ports and volumes. */
  async migrate(who: TenantToken, id: string, worker: string): Promise<Vm & { migrated: MigrationSummary }> {
    return this.api.ok(who, 'POST', `/v1/vms/${id}/migrate`, { worker }, 240_000);
  }

  /** Stops the VM on its worker and releases its ports and volumes (the API waits for the agent). */
  async deleteVm(who: TenantToken, id: string): Promise<{ released: string[] }> {
    return this.api.ok(who, 'DELETE', `/v1/vms/${id}`, undefined, 90_000);
  }

  /** Ids of the VM units on a worker, as its systemd lists them (loaded, any state). */
  async vmUnits(node: Node): Promise<string[]> {
    const out = await node.succeed(['systemctl', 'list-units', '--all', '--plain', '--no-legend', '--full', 'plasmavmc-vm@*.service']);
    return [...out.matchAll(/plasmavmc-vm@(\S+)\.service/g)].map((m) => m[1]!);
  }

  async console(who: TenantToken, id: string): Promise<string> {
    return (await this.api.ok<{ console: string }>(who, 'GET', `/v1/vms/${id}/console?bytes=262144`)).console;
  }

  /** The console since the VM's latest start. */
  async currentBoot(who: TenantToken, id: string): Promise<string> {
    const text = await this.console(who, id);
    const at = text.lastIndexOf(BOOT_LINE);
    return at >= 0 ? text.slice(at) : text;
  }

  /**
   * Wait for `pattern` on the VM's console in its current boot. Fails at once when the agent
   * reports the VM failed or the kernel panicked, and `afterInitMs` after the kernel started
   * /init without the pattern (the image's userspace is not going to say it).
   */
  async waitForConsole(
    who: TenantToken,
    vm: Vm,
    pattern: RegExp,
    what: string,
    o: { timeoutMs: number; afterInitMs?: number; stopIf?: RegExp; signal?: AbortSignal; log?: Logger },
  ): Promise<{ match: RegExpExecArray; afterMs: number }> {
    const t0 = Date.now();
    let initAt: number | null = null;
    let boot = '';
    const tail = () => boot.split('\n').slice(-15).join('\n');
    return waitFor(
      `${what} on vm ${vm.id} (${vm.name}, ${vm.worker})`,
      {
        timeoutMs: o.timeoutMs,
        intervalMs: 1000,
        maxIntervalMs: 1000,
        signal: o.signal,
        ...(o.log ? { progress: { log: o.log } } : {}),
        diagnostics: async () => `console tail:\n${tail()}`,
      },
      async () => {
        const v = await this.vm(who, vm.id);
        if (v.status.state === 'failed') throw new StopWaiting(`vm ${vm.id} on ${vm.worker} failed: ${v.status.reason}`);
        boot = await this.currentBoot(who, vm.id);
        const match = pattern.exec(boot);
        if (match) return { match, afterMs: Date.now() - t0 };
        if (/Kernel panic/.test(boot)) throw new StopWaiting(`vm ${vm.id} on ${vm.worker}: kernel panic before ${what}:\n${tail()}`);
        if (o.stopIf?.test(boot))
          throw new StopWaiting(`vm ${vm.id} on ${vm.worker}: ${o.stopIf.exec(boot)?.[0]} instead of ${what}:\n${tail()}`);
        if (initAt === null && INIT_LINE.test(boot)) initAt = Date.now();
        if (initAt !== null && o.afterInitMs !== undefined && Date.now() - initAt > o.afterInitMs)
          throw new StopWaiting(
            `vm ${vm.id} on ${vm.worker}: the kernel started /init ${seconds(Date.now() - initAt)} ago but the image printed no ${what}; console tail:\n${tail()}`,
          );
        throw new Error(`no ${what} yet (${v.status.state}; ${initAt ? '/init running' : 'kernel booting'})`);
      },
    );
  }
}

export const plasmavmc = defineService({
  name: 'plasmavmc',
  description: 'VM hosting control API (lab: small service, state in chainfire; agents on workers run QEMU)',
  params: Params,
  client: (svc) => new PlasmavmcClient(svc),
});
