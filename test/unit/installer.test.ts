import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { GUEST_MODULES, KERNEL_DIR, hasInterpreter, moduleLoadOrder } from '../../src/baremetal/lab-installer.js';

describe('lab installer inputs', () => {
  it('tells a static busybox from a dynamically linked binary by its ELF program headers', () => {
    expect(hasInterpreter(readFileSync('/bin/busybox'))).toBe(false);
    expect(hasInterpreter(readFileSync(process.execPath))).toBe(true);
  });

  it('orders the cloud kernel\'s modules dependencies first, from their own modinfo', async () => {
    const version = readdirSync(path.join(KERNEL_DIR, 'modules'))[0]!;
    const { stdout } = await execa('find', [path.join(KERNEL_DIR, 'modules', version, 'kernel'), '-name', '*.ko']);
    const modules = Object.fromEntries(stdout.split('\n').map((f) => [path.basename(f, '.ko').replaceAll('-', '_'), f]));
    const order = await moduleLoadOrder(GUEST_MODULES, modules);
    const before = (a: string, b: string) => expect(order.indexOf(a), `${a} before ${b} in ${order.join(' ')}`).toBeLessThan(order.indexOf(b));
    before('virtio_ring', 'virtio');
    before('virtio', 'virtio_pci');
    before('failover', 'net_failover');
    before('net_failover', 'virtio_net');
    expect(order).toEqual(expect.arrayContaining(GUEST_MODULES));
    await expect(moduleLoadOrder(['no_such_module'], modules)).rejects.toThrow('kernel module no_such_module not found');
  });
});
