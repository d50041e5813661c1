import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { LightningstorClient } from '../services/lightningstor.js';
import type { PlasmavmcClient } from '../services/plasmavmc.js';
import type { TenantToken } from '../services/tenant-api.js';
import type { Fault } from './fault.js';
import { hostWatcher } from './host-watcher.js';

/**
 * Someone overwrites a VM image's object after it was imported: a watcher on the host lists the
 * tenant's images and, as soon as one is imported from an object, uploads other bytes under its
 * initrd's key. Workers that fetch the image afterwards get bytes that do not match the digest
 * plasmavmc recorded. Heal: the watcher stops (the replaced object stays; the next run uploads anew).
 */
export function imageObjectReplaced(plasmavmc: PlasmavmcClient, lightningstor: LightningstorClient, who: TenantToken): Fault {
  const replaced = new Set<string>();
  return hostWatcher({
    kind: 'image-object-replaced',
    name: `image-object-replaced: the initrd object of every image tenant ${who.tenant} imports is overwritten`,
    targets: [lightningstor.proxyNode().name],
    everyMs: 250,
    pass: async () => {
      for (const image of await plasmavmc.images(who)) {
        if (replaced.has(image.id) || !image.initrd.startsWith('http://')) continue;
        replaced.add(image.id);
        const [bucket, ...key] = decodeURIComponent(new URL(image.initrd).pathname).slice(1).split('/');
        await (await lightningstor.s3()).send(
          new PutObjectCommand({ Bucket: bucket, Key: key.join('/'), Body: Buffer.from(`not the image ${image.id} was imported from\n`) }),
        );
      }
    },
  });
}
