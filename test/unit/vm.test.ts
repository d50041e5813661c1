import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { chassisMac } from '../../src/baremetal/chassis.js';
import { hostKeyLine } from '../../src/cluster/ssh-pool.js';
import { bootWaves } from '../../src/cluster/waves.js';
import { loadProfile } from '../../src/config/load-profile.js';
import { renderEnvFile } from '../../src/core/shell.js';
import { allocatePorts, portInUse } from '../../src/vm/ports.js';
import { nodeMacs, type QemuSpec, qemuArgv } from '../../src/vm/qemu-argv.js';

const spec: QemuSpec = {
  name: 'node01',
  accel: 'tcg',
  memoryMiB: 768,
  vcpus: 1,
  kernel: '/img/vmlinuz',
  initrd: '/img/initrd.img',
  cmdline: 'console=ttyS0 root=/dev/vda',
  disk: '/s/node01/disk.qcow2',
  control: {
    mac: '52:54:00:c0:00:01',
    forwards: [
      { hostPort: 40022, guestPort: 22 },
      { hostPort: 40080, guestPort: 80 },
    ],
  },
  data: { mac: '52:54:00:da:00:01', vdeSocket: '/v/ctl' },
  fwCfg: [{ name: 'opt/ultracloud/env', file: '/s/node01/node.env' }],
  qmpSocket: '/s/node01/qmp.sock',
  pidfile: '/s/node01/qemu.pid',
  consoleLog: '/s/node01/vm.log',
};
const argsAfter = (argv: string[], flag: string) => argv.filter((_, i) => argv[i - 1] === flag);

describe('qemu argv builder', () => {
  it('builds a daemonized TCG guest with loopback-only forwards, a separate data NIC, QMP, pidfile and console', () => {
    const a = qemuArgv(spec);
    expect(argsAfter(a, '-accel')).toEqual(['tcg,tb-size=128']);
    expect(a).not.toContain('-cpu');
    expect(argsAfter(a, '-netdev')).toEqual([
      'user,id=ctl,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:40080-:80',
      'vde,id=data,sock=/v/ctl',
    ]);
    expect(argsAfter(a, '-device')).toContain('virtio-net-pci,netdev=data,mac=52:54:00:da:00:01');
    expect(argsAfter(a, '-fw_cfg')).toEqual(['name=opt/ultracloud/env,file=/s/node01/node.env']);
    expect(argsAfter(a, '-qmp')).toEqual(['unix:/s/node01/qmp.sock,server=on,wait=off']);
    expect(argsAfter(a, '-pidfile')).toEqual(['/s/node01/qemu.pid']);
    expect(argsAfter(a, '-chardev')[0]).toMatch(/path=\/s\/node01\/vm.log,append=on/);
    expect(a.at(-1)).toBe('-daemonize');
    expect(a.join(' ')).not.toMatch(/hostfwd=tcp::/); // never bound to all interfaces
  });

  it('uses kvm with the host cpu, and no data NIC when there is no switch', () => {
    const a = qemuArgv({ ...spec, accel: 'kvm', data: undefined });
    expect(argsAfter(a, '-accel')).toEqual(['kvm']);
    expect(argsAfter(a, '-cpu')).toEqual(['host']);
    expect(a.join(' ')).not.toMatch(/vde/);
  });

  it('stands in for a physical machine: boots the ISO, disks by virtio serial, SMBIOS serial, a marker port, fw_cfg strings', () => {
    const a = qemuArgv({
      ...spec,
      kernel: undefined,
      initrd: undefined,
      cmdline: undefined,
      disk: undefined,
      data: undefined,
      cdrom: '/i/installer.iso',
      serialDisks: [{ file: '/c/disk.qcow2', serial: 'uc-control-root' }],
      smbiosSerial: 'uc-bm-control-01',
      virtioSerial: { name: 'org.ultracloud.markers', file: '/c/markers.log' },
      fwCfg: [{ name: 'opt/ultracloud/deployer', string: 'http://10.0.2.2:4000' }],
    });
    expect(a).not.toContain('-kernel');
    expect(argsAfter(a, '-drive')).toEqual([
      'file=/c/disk.qcow2,if=none,id=disk0,format=qcow2,cache=unsafe',
      'file=/i/installer.iso,media=cdrom,if=ide,readonly=on',
    ]);
    expect(argsAfter(a, '-device')).toEqual(
      expect.arrayContaining([
        'virtio-blk-pci,drive=disk0,serial=uc-control-root',
        'virtserialport,chardev=vsp,name=org.ultracloud.markers',
      ]),
    );
    expect(argsAfter(a, '-boot')).toEqual(['order=d']);
    expect(argsAfter(a, '-smbios')).toEqual(['type=1,serial=uc-bm-control-01']);
    expect(argsAfter(a, '-fw_cfg')).toEqual(['name=opt/ultracloud/deployer,string=http://10.0.2.2:4000']);
    expect(chassisMac('bm-control-01')).toMatch(/^52:54:00:b0:[0-9a-f]{2}:[0-9a-f]{2}$/);
    expect(chassisMac('bm-control-01')).not.toBe(chassisMac('bm-worker-01'));
  });

  it('derives distinct, stable MACs per node', () => {
    expect(nodeMacs(1)).toEqual({ control: '52:54:00:c0:00:01', data: '52:54:00:da:00:01' });
    expect(nodeMacs(300).data).toBe('52:54:00:da:01:2c');
    expect(() => nodeMacs(70000)).toThrow(RangeError);
  });

  it('quotes env values for the guest shell', () => {
    expect(renderEnvFile({ A: "it's", B: 'x y' })).toBe(`A='it'\\''s'\nB='x y'\n`);
  });
});

describe('ports', () => {
  it('allocates distinct free loopback ports and avoids the given ones', async () => {
    const first = await allocatePorts(3);
    expect(new Set(first).size).toBe(3);
    const second = await allocatePorts(5, new Set(first));
    expect(second.some((p) => first.includes(p))).toBe(false);
    const srv = net.createServer().listen(first[0], '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    expect(await portInUse(first[0]!)).toBe(true);
    srv.close();
  });
});

describe('boot waves', () => {
  const lab = loadProfile('lab');
  it('boots the lab control plane, then workers, then the gateway', () => {
    expect(bootWaves(lab.nodes)).toEqual([['node01', 'node02', 'node03'], ['node04', 'node05'], ['node06']]);
  });
  it('ignores dependencies outside a selection and refuses unknown nodes and cycles', () => {
    expect(bootWaves(lab.nodes, ['node06', 'node01'])).toEqual([['node01', 'node06']]);
    expect(() => bootWaves(lab.nodes, ['node09'])).toThrow(/unknown node\(s\): node09/);
    expect(() =>
      bootWaves([
        { name: 'a', dependsOn: ['b'] },
        { name: 'b', dependsOn: ['a'] },
      ]),
    ).toThrow(/cycle among: a, b/);
  });
});

describe('ssh host keys', () => {
  it('renders the key type and blob as a known_hosts-style line', () => {
    const type = Buffer.from('ssh-ed25519');
    const blob = Buffer.concat([Buffer.from([0, 0, 0, type.length]), type, Buffer.from([0, 0, 0, 2, 1, 2])]);
    expect(hostKeyLine(blob)).toBe(`ssh-ed25519 ${blob.toString('base64')}`);
  });
});

describe('process identity', () => {
  it('a pidfile whose pid now runs a process that merely mentions the path is not ours; a -pidfile owner is', async () => {
    const { ownedPid } = await import('../../src/core/proc.js');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-pid-'));
    const pidfile = path.join(dir, 'qemu.pid');
    const hold = 'setInterval(() => {}, 1000)';
    const impostor = execa('node', ['-e', hold, pidfile], { reject: false });
    const owner = execa('node', ['-e', hold, '--', '-pidfile', pidfile], { reject: false });
    try {
      writeFileSync(pidfile, `${impostor.pid}\n`);
      expect(await ownedPid(pidfile)).toBeNull();
      writeFileSync(pidfile, `${owner.pid}\n`);
      expect(await ownedPid(pidfile)).toBe(owner.pid);
    } finally {
      impostor.kill('SIGKILL');
      owner.kill('SIGKILL');
      await Promise.all([impostor, owner]);
    }
  });
});
