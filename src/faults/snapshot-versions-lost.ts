import { DeleteObjectCommand, ListBucketsCommand, ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import type { LightningstorClient } from '../services/lightningstor.js';
import type { Fault } from './fault.js';
import { hostWatcher } from './host-watcher.js';

/**
 * Buckets that keep only the latest version of each object: a watcher on the host deletes every
 * older version as it appears (a lifecycle rule gone wrong). Heal: the watcher stops; what it
 * deleted stays gone.
 */
export function snapshotVersionsLost(lightningstor: LightningstorClient, bucketPrefix: string): Fault {
  return hostWatcher({
    kind: 'snapshot-versions-lost',
    name: `snapshot-versions-lost: only the latest version of each object survives in ${bucketPrefix}* buckets`,
    targets: [lightningstor.proxyNode().name],
    everyMs: 300,
    pass: async () => {
      const s3 = await lightningstor.s3();
      for (const b of (await s3.send(new ListBucketsCommand({}))).Buckets ?? []) {
        if (!b.Name?.startsWith(bucketPrefix)) continue;
        const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: b.Name }));
        for (const v of listed.Versions ?? [])
          if (!v.IsLatest) await s3.send(new DeleteObjectCommand({ Bucket: b.Name, Key: v.Key, VersionId: v.VersionId }));
      }
    },
  });
}
