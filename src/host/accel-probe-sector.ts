/**
 * `/dev/kvm` existing proves nothing: on these machines a KVM guest runs its first I/O exits
 * and then stalls on real work, so a kernel never gets past its setup code. The probe is a
 * 512-byte boot sector (src/vm/accel-probe.S, assembled below) that prints a start marker, enters
 * long mode, runs a bounded CPU loop and prints the OK marker. Only the OK marker within
 * the deadline counts as "usable".
 */
export const PROBE_START = 'ULTRACLOUD_ACCEL_START';
export const PROBE_MARKER = 'ULTRACLOUD_ACCEL_OK';

/** `as --64 accel-probe.S && objcopy -O binary -j .text`; test/unit/accel-probe.test.ts re-assembles and compares. */
const PROBE_SECTOR_B64 =
  '+jHAjtiOwI7QvAB8vrt86BQADwEWCH0PIMBmg8gBDyLA6jJ8CAC6+AOshMB0A+7r+MNmuBAAjtiOwI7QvwAQAAAxwLkADAAA86vHBQAQAAADIAAAxwUAIAAAAzAAAMcFADAAAIMAAAAPIOCDyCAPIuC4ABAAAA8i2LmAAADADzINAAEAAA8wDyDADQAAAIAPIsDqmXwAABgASMfBAAAABEj/yXX7SI01JwAAAGa6+AOshMB0A+7r+PTr/VVMVFJBQ0xPVURfQUNDRUxfU1RBUlQKAFVMVFJBQ0xPVURfQUNDRUxfT0sKAAAAAAAAAAAA//8AAACazwD//wAAAJLPAP//AAAAmq8AHwDofAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAVao=';

export function probeBootSector(): Buffer {
  return Buffer.from(PROBE_SECTOR_B64, 'base64');
}
