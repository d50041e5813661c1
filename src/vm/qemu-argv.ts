/** Everything needed to launch one guest; qemuArgv turns it into argv with no I/O (unit-tested). */
export interface QemuSpec {
  name: string;
  accel: 'kvm' | 'tcg';
  memoryMiB: number;
  vcpus: number;
  /** Direct kernel boot (cluster nodes); without it the guest boots from `cdrom`/disks like a chassis. */
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  /** Root disk (a qcow2 overlay on the shared read-only base). */
  disk?: string;
  /** Bare-metal stand-in: an installer ISO, disks with a virtio serial (-> /dev/disk/by-id/virtio-<serial>), an SMBIOS system serial. */
  cdrom?: string;
  serialDisks?: { file: string; serial: string }[];
  smbiosSerial?: string;
  /** A virtio-serial port (guest: /sys/class/virtio-ports/*\/name) logged to a host file: the marker channel. */
  virtioSerial?: { name: string; file: string };
  /** Control NIC: QEMU user-mode networking, forwards bound to 127.0.0.1 only. */
  control: { mac: string; forwards: { hostPort: number; guestPort: number }[] };
  /** Data NIC on the cluster L2 network (vde_switch control dir), separate from the control path. */
  data?: { mac: string; vdeSocket: string };
  fwCfg: ({ name: string; file: string } | { name: string; string: string })[];
  qmpSocket: string;
  pidfile: string;
  consoleLog: string;
  /** Restore from a snapshot: start paused, waiting for `migrate-incoming` over QMP. */
  incoming?: boolean;
}

export function qemuArgv(s: QemuSpec): string[] {
  const accel = s.accel === 'tcg' ? 'tcg,tb-size=128' : 'kvm'; // tb-size=128 halves TCG RSS at no boot cost
  const argv = [
    '-name',
    `${s.name},process=uc-${s.name}`,
    '-machine',
    'pc',
    '-accel',
    accel,
    ...(s.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-smp',
    String(s.vcpus),
    '-m',
    String(s.memoryMiB),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
  ];
  if (s.kernel) argv.push('-kernel', s.kernel, ...(s.initrd ? ['-initrd', s.initrd] : []), '-append', s.cmdline ?? '');
  if (s.disk) argv.push('-drive', `file=${s.disk},if=virtio,format=qcow2,cache=unsafe,discard=unmap`);
  for (const [i, d] of (s.serialDisks ?? []).entries())
    argv.push(
      '-drive',
      `file=${d.file},if=none,id=disk${i},format=qcow2,cache=unsafe`,
      '-device',
      `virtio-blk-pci,drive=disk${i},serial=${d.serial}`,
    );
  if (s.cdrom) argv.push('-drive', `file=${s.cdrom},media=cdrom,if=ide,readonly=on`, '-boot', 'order=d');
  if (s.smbiosSerial) argv.push('-smbios', `type=1,serial=${s.smbiosSerial}`);
  if (s.virtioSerial)
    argv.push(
      '-device',
      'virtio-serial-pci',
      '-chardev',
      `file,id=vsp,path=${s.virtioSerial.file},append=on`,
      '-device',
      `virtserialport,chardev=vsp,name=${s.virtioSerial.name}`,
    );
  const fwd = s.control.forwards.map((f) => `,hostfwd=tcp:127.0.0.1:${f.hostPort}-:${f.guestPort}`).join('');
  argv.push('-netdev', `user,id=ctl${fwd}`, '-device', `virtio-net-pci,netdev=ctl,mac=${s.control.mac}`);
  if (s.data) argv.push('-netdev', `vde,id=data,sock=${s.data.vdeSocket}`, '-device', `virtio-net-pci,netdev=data,mac=${s.data.mac}`);
  for (const f of s.fwCfg) argv.push('-fw_cfg', 'file' in f ? `name=${f.name},file=${f.file}` : `name=${f.name},string=${f.string}`);
  argv.push(
    '-device',
    'virtio-rng-pci',
    '-chardev',
    `file,id=console,path=${s.consoleLog},append=on`,
    '-serial',
    'chardev:console',
    '-qmp',
    `unix:${s.qmpSocket},server=on,wait=off`,
    '-pidfile',
    s.pidfile,
    ...(s.incoming ? ['-incoming', 'defer', '-S'] : []),
    '-daemonize',
  );
  return argv;
}

/** Stable MACs derived from the node's index: 52:54:00 (QEMU OUI), 0xc0 control / 0xda data. */
export function nodeMacs(index: number): { control: string; data: string } {
  if (index < 0 || index > 0xffff) throw new RangeError(`node index ${index} out of range`);
  const hi = ((index >> 8) & 0xff).toString(16).padStart(2, '0');
  const lo = (index & 0xff).toString(16).padStart(2, '0');
  return { control: `52:54:00:c0:${hi}:${lo}`, data: `52:54:00:da:${hi}:${lo}` };
}
