import { createHash } from 'node:crypto';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { CheckFailed, errorMessage } from '../../core/errors.js';
import { powerCut } from '../../faults/power.js';
import type { LIGHTNINGSTOR } from '../../services/lightningstor.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';
import { lightningstorReady, removeBucket, removeBuckets, s3Error } from './storage-api.js';

const DURABILITY_BUCKET_PREFIX = 'durability-';
const KEY = 'record.bin';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * An object in lightningstor across the power cut of one of the two workers that hold its
 * replicas: HEAD and GET answer from the other replica, byte for byte, while that worker is down.
 */
export const lightningstorWorkerOutage: Step<ClusterEnv<(typeof LIGHTNINGSTOR)[number]> & { state: RunState }> = {
  name: 'lightningstor-worker-outage',
  proves:
    'with node05 (one of the two object replicas) powered off, HEAD and GET of an object written before answer from the other replica with its ETag, length and sha256; the object is still whole once node05 is back',
  needs: ['readiness'],
  run: async ({ services, faults, state }, step) => {
    await lightningstorReady(services);
    const objects = services['lightningstor-object'];
    const down = objects.nodes().at(-1)!;
    const s3 = await services.lightningstor.s3();
    await removeBuckets(s3, DURABILITY_BUCKET_PREFIX); // an interrupted run's
    const bucket = `${DURABILITY_BUCKET_PREFIX}${state.runId}`;
    const body = Buffer.from(Array.from({ length: 256 << 10 }, (_, i) => (i * 31 + state.runId.length) & 0xff));
    const record: Record<string, unknown> = { bucket, key: KEY, down: down.name, bytes: body.length, sha256: sha256(body) };
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    try {
      const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: KEY, Body: body }));
      record.put = { etag: put.ETag };
      /** HEAD and GET now; a failure names the S3 error and the object servers' units. */
      const read = async (when: string) => {
        try {
          const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: KEY }));
          const got = await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: KEY }))).Body!.transformToByteArray();
          return {
            at: new Date().toISOString(),
            head: { etag: head.ETag, length: head.ContentLength },
            get: { bytes: got.length, sha256: sha256(got) },
          };
        } catch (e) {
          const servers = await Promise.all(objects.nodes().map(async (n) => `${n}: ${await objects.describe(n).catch(errorMessage)}`));
          throw new CheckFailed(`${when}: ${bucket}/${KEY}: ${s3Error(e)}; object servers: ${servers.join('; ')}`);
        }
      };
      const whole = (r: Awaited<ReturnType<typeof read>>) => r.head.etag === put.ETag && r.get.sha256 === record.sha256;

      step.phase(`power cut ${down}`);
      const cut = powerCut(down);
      await faults.invoke(cut);
      try {
        const during = await read(`with ${down} powered off`);
        record.duringOutage = during;
        await step.json('lightningstor-head-during-node05-outage.json', { ...record });
        if (!whole(during))
          throw new CheckFailed(
            `with ${down} powered off, ${bucket}/${KEY} answered ETag ${during.head.etag} sha256 ${during.get.sha256}, written ${put.ETag} ${record.sha256}${during.head.etag === put.ETag ? ': the body differs under the same ETag, so the replica that served it is corrupted' : ''}`,
          );
      } finally {
        step.phase(`${down} back`);
        await faults.heal(cut);
      }
      const after = await read(`after ${down} came back`);
      record.afterOutage = after;
      if (!whole(after))
        throw new CheckFailed(`after ${down} came back, ${bucket}/${KEY} reads sha256 ${after.get.sha256}, written ${record.sha256}`);
      return `${bucket}/${KEY} (${body.length} bytes) answered HEAD and GET whole with ${down} powered off, and after it came back`;
    } finally {
      await step.json('lightningstor-worker-outage.json', record);
      await removeBucket(s3, bucket).catch((e: unknown) => step.log.warn(`could not remove bucket ${bucket}: ${errorMessage(e)}`));
    }
  },
};
