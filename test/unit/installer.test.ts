import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { GUEST_MODULES, KERNEL_DIR } from '../../src/baremetal/lab-installer.js';
import { hasInterpreter, moduleLoadOrder } from '../../src/images/initramfs.js';

describe('lab installer inputs', () => {
  it('tells a static busybox from a dynamically linked binary by its ELF program headers', () => {
    expect(hasInterpreter(readFileSync('/bin/busybox'))).toBe(false);
    expect(hasInterpreter(readFileSync(process.execPath))).toBe(true);
  });

  it("orders the cloud kernel's modules dependencies first, from their own modinfo", async () => {
    const version = readdirSync(path.join(KERNEL_DIR, 'modules'))[0]!;
    const { stdout } = await execa('find', [path.join(KERNEL_DIR, 'modules', version, 'kernel'), '-name', '*.ko']);
    const modules = Object.fromEntries(stdout.split('\n').map((f) => [path.basename(f, '.ko').replaceAll('-', '_'), f]));
    const order = await moduleLoadOrder(GUEST_MODULES, modules);
    const comesBefore = (a: string, b: string) =>
      expect(order.indexOf(a), `${a} before ${b} in ${order.join(' ')}`).toBeLessThan(order.indexOf(b));
    comesBefore('virtio_ring', 'virtio');
    comesBefore('virtio', 'virtio_pci');
    comesBefore('failover', 'net_failover');
    comesBefore('net_failover', 'virtio_net');
    expect(order).toEqual(expect.arrayContaining(GUEST_MODULES));
    await expect(moduleLoadOrder(['no_such_module'], modules)).rejects.toThrow('kernel module no_such_module not found');
  });
});

describe('image build pruning', () => {
  it("keeps the two newest builds of the new build's kind plus any in use, and never touches other kinds", async () => {
    const { mkdtempSync, mkdirSync, writeFileSync, utimesSync, readdirSync: ls } = await import('node:fs');
    const os = await import('node:os');
    const pino = (await import('pino')).default;
    const { pruneBuilds } = await import('../../src/images/prune.js');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-prune-'));
    const ids = [
      'aaaa000000000001',
      'aaaa000000000002',
      'aaaa000000000003',
      'aaaa000000000004',
      'baremetal-1',
      'baremetal-2',
      'baremetal-3',
      'nix-1',
    ];
    ids.forEach((id, i) => {
      mkdirSync(path.join(dir, id));
      writeFileSync(path.join(dir, id, 'manifest.json'), '{}');
      utimesSync(path.join(dir, id, 'manifest.json'), 1000 + i, 1000 + i); // later in the list = newer
    });
    await pruneBuilds(dir, 'aaaa000000000004', new Set(['aaaa000000000001']), pino({ level: 'silent' }));
    expect(ls(dir).sort()).toEqual([
      'aaaa000000000001',
      'aaaa000000000003',
      'aaaa000000000004',
      'baremetal-1',
      'baremetal-2',
      'baremetal-3',
      'nix-1',
    ]);
    await pruneBuilds(dir, 'baremetal-3', new Set(), pino({ level: 'silent' }));
    expect(
      ls(dir)
        .filter((d) => d.startsWith('baremetal-'))
        .sort(),
    ).toEqual(['baremetal-2', 'baremetal-3']);
    expect(ls(dir)).toContain('nix-1');
  });
});
