import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetBucketLocationCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { CheckFailed, errorMessage } from '../../core/errors.js';
import { unitStopped } from '../../faults/units.js';
import type { ServiceClients } from '../../services/index.js';
import { LIGHTNINGSTOR } from '../../services/lightningstor.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';

type Env = ClusterEnv<(typeof LIGHTNINGSTOR)[number]> & { state: RunState };

const BUCKET_PREFIX = 'smoke-';
const KEY = 'state.json';
const VERSIONS = 3;

/** What an S3 error says: its code, HTTP status and message (SlowDown is Swift's 503). */
export function s3Error(e: unknown): string {
  const x = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return `${x.name ?? 'Error'} (HTTP ${x.$metadata?.httpStatusCode ?? '?'}): ${errorMessage(e)}`;
}

/**
 * Every version of every object, then the bucket: what the step (or an interrupted run) made.
 * Oldest first: deleting the current version while older ones exist makes Swift 2.30's s3api
 * restore the previous one with a PUT that waits for a body the DELETE never sent (60 s, then 499).
 */
export async function removeBucket(s3: S3Client, bucket: string): Promise<void> {
  const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
  for (const v of [...(listed.DeleteMarkers ?? []), ...(listed.Versions ?? []).reverse()])
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: v.Key, VersionId: v.VersionId }));
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
}

/** Wait for lightningstor's proxy and every storage server, each within its deferred deadline (they start after boot). */
export async function lightningstorReady(services: Pick<ServiceClients, (typeof LIGHTNINGSTOR)[number]>): Promise<void> {
  await Promise.all(LIGHTNINGSTOR.map((name) => services[name].ready()));
}

/** Every bucket whose name starts with `prefix` (a lane's, from this run or an interrupted one), removed whole. */
export async function removeBuckets(s3: S3Client, prefix: string): Promise<void> {
  for (const b of (await s3.send(new ListBucketsCommand({}))).Buckets ?? []) if (b.Name?.startsWith(prefix)) await removeBucket(s3, b.Name);
}

/**
 * lightningstor as an S3 user meets it (a real S3 client, SigV4): a bucket with its metadata
 * (location, versioning), explicit object versions written, listed, and each read back by its
 * version id; then removed. An object that cannot be written or read is named with what the
 * object servers lack.
 */
export const storageApi: Step<Env> = {
  name: 'storage-api',
  proves:
    'through S3 (SigV4, a real S3 client): a bucket is created and reports its location and, once enabled, its versioning; three versions of one object are listed with their ids and each reads back by its id, the latest by HEAD; with one object server stopped, HEAD and GET by version id still answer from the other replica; the bucket and every version are removed',
  needs: ['readiness'],
  run: async ({ services, faults, state }, step) => {
    const { lightningstor, 'lightningstor-object': objects } = services;
    // Swift's servers are deferred (they start after boot): wait for them, within their own deadline.
    await Promise.all([lightningstor, services['lightningstor-container'], services['lightningstor-account']].map((s) => s.ready()));
    // An object server that is down is the S3 checks' to judge (two replicas: one serves every read), not a reason to stop here.
    await objects.ready().catch((e: unknown) => step.log.warn(`not every object server is up: ${errorMessage(e)}`));
    const s3 = await lightningstor.s3();
    /** An object operation; its failure is named with each object server's unit state and object file count. */
    const object = async <T>(what: string, op: () => Promise<T>): Promise<T> => {
      try {
        return await op();
      } catch (e) {
        const servers = await Promise.all(
          objects.nodes().map(async (n) => {
            const data = (await n.exec("find /srv/node/d1/objects -name '*.data' 2>/dev/null | wc -l")).stdout.trim();
            return `${n}: ${await objects.describe(n)}, ${data} object file(s)`;
          }),
        );
        throw new CheckFailed(`${what} failed: ${s3Error(e)}; object servers: ${servers.join('; ')}`);
      }
    };
    for (const b of (await s3.send(new ListBucketsCommand({}))).Buckets ?? [])
      if (b.Name?.startsWith(BUCKET_PREFIX)) await removeBucket(s3, b.Name);
    const bucket = `${BUCKET_PREFIX}${state.runId}`;
    const record: Record<string, unknown> = { bucket };
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    try {
      record.location = (await s3.send(new GetBucketLocationCommand({ Bucket: bucket }))).LocationConstraint ?? '';
      if (record.location !== lightningstor.svc.params.region)
        throw new CheckFailed(
          `bucket ${bucket} reports location ${JSON.stringify(record.location)}, not ${lightningstor.svc.params.region}`,
        );
      await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
      record.versioning = (await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }))).Status;
      if (record.versioning !== 'Enabled')
        throw new CheckFailed(`bucket ${bucket} reports versioning ${record.versioning ?? 'unset'} after enabling it`);

      const written: { body: string; versionId: string }[] = [];
      for (let i = 1; i <= VERSIONS; i++) {
        const body = JSON.stringify({ run: state.runId, version: i });
        const put = await object(`PUT ${bucket}/${KEY} (version ${i})`, () =>
          s3.send(new PutObjectCommand({ Bucket: bucket, Key: KEY, Body: body, ContentType: 'application/json' })),
        );
        if (!put.VersionId) throw new CheckFailed(`PUT ${bucket}/${KEY} (version ${i}) returned no version id`);
        written.push({ body, versionId: put.VersionId });
      }
      record.written = written;
      const listed = (await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }))).Versions ?? [];
      record.listed = listed.map((v) => ({ versionId: v.VersionId, isLatest: v.IsLatest, size: v.Size }));
      const missing = written.filter((w) => !listed.some((v) => v.VersionId === w.versionId));
      if (missing.length)
        throw new CheckFailed(`${bucket}/${KEY}: versions ${missing.map((m) => m.versionId).join(', ')} were written but not listed`);
      if (listed.find((v) => v.IsLatest)?.VersionId !== written.at(-1)!.versionId)
        throw new CheckFailed(`${bucket}/${KEY}: the latest listed version is not the last one written`);

      for (const w of written) {
        const got = await object(`GET ${bucket}/${KEY} version ${w.versionId}`, async () =>
          (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: KEY, VersionId: w.versionId }))).Body!.transformToString(),
        );
        if (got !== w.body) throw new CheckFailed(`${bucket}/${KEY} version ${w.versionId} reads ${got}, written ${w.body}`);
      }
      const head = await object(`HEAD ${bucket}/${KEY}`, () => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: KEY })));
      record.head = { versionId: head.VersionId, etag: head.ETag, length: head.ContentLength };
      if (head.VersionId !== written.at(-1)!.versionId)
        throw new CheckFailed(`HEAD ${bucket}/${KEY} shows version ${head.VersionId}, not the latest`);

      // Two replicas: with one object server down, HEAD and GET still answer from the other.
      step.phase('one object server down');
      const down = objects.nodes().at(-1)!;
      const outage = unitStopped(objects, down);
      await faults.invoke(outage);
      try {
        const [first, last] = [written[0]!, written.at(-1)!];
        const h = await object(`HEAD ${bucket}/${KEY} with ${down}'s object server down`, () =>
          s3.send(new HeadObjectCommand({ Bucket: bucket, Key: KEY })),
        );
        const got = await object(`GET ${bucket}/${KEY} version ${first.versionId} with ${down}'s object server down`, async () =>
          (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: KEY, VersionId: first.versionId }))).Body!.transformToString(),
        );
        record.oneServerDown = { server: down.name, headVersionId: h.VersionId, firstVersionReads: got === first.body };
        if (h.VersionId !== last.versionId || got !== first.body)
          throw new CheckFailed(
            `with ${down}'s object server down: HEAD shows version ${h.VersionId} (latest ${last.versionId}), version ${first.versionId} reads ${got}`,
          );
      } finally {
        await faults.heal(outage);
      }
      return `bucket ${bucket} (location ${record.location}, versioning Enabled): ${VERSIONS} versions of ${KEY} listed and read back by id; HEAD and GET answered with ${down}'s object server down`;
    } finally {
      await step.json('storage-api.json', record);
      await removeBucket(s3, bucket).catch((e: unknown) => step.log.warn(`could not remove bucket ${bucket}: ${errorMessage(e)}`));
    }
  },
};
