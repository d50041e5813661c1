import type { Node } from '../cluster/node.js';
import { newcArchive } from '../images/initramfs.js';
import type { VmImage } from '../services/plasmavmc.js';
import type { Fault } from './fault.js';

const DIR = '/var/lib/ultracloud-faults';
const SILENT_INIT = '#!/bin/busybox sh\n# A guest whose userspace never says it is ready.\nexec /bin/busybox sleep 2147483647\n';
const path = (u: string) => decodeURIComponent(new URL(u).pathname);
/** $2, zero-padded to 4 bytes (the kernel looks for a next archive only there), then stdin, into $3. */
const APPEND = 'mkdir -p "$1" && { cat "$2"; head -c $(( (4 - $(stat -c %s "$2") % 4) % 4 )) /dev/zero; cat; } > "$3"';

/**
 * An image whose userspace never prints its ready marker: the real image's initrd with an /init
 * that only sleeps appended (later cpio members win), on every worker. `use` makes the lane boot
 * it (or, with null, the real one again).
 */
export function silentVmImage(workers: Node[], image: VmImage, use: (image: VmImage | null) => void): Fault {
  const silent = `${DIR}/silent-initrd.img`;
  return {
    kind: 'vm-image-silent',
    name: `vm-image-silent on ${workers.join(', ')}`,
    targets: workers.map((w) => w.name),
    invoke: async () => {
      const extra = newcArchive([{ name: 'init', mode: 0o755, data: Buffer.from(SILENT_INIT) }]);
      for (const w of workers) await w.succeed(['sh', '-c', APPEND, 'sh', DIR, path(image.initrd), silent], { stdin: extra });
      use({ kernel: image.kernel, initrd: `file://${silent}` });
      return { initrd: silent };
    },
    heal: async () => {
      use(null);
      for (const w of workers) await w.exec(['rm', '-rf', DIR]);
    },
  };
}
