import { createHash } from 'node:crypto';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { CheckFailed } from '../../core/errors.js';
import type { LIGHTNINGSTOR } from '../../services/lightningstor.js';
import type { ImageDigest } from '../../services/plasmavmc.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';
import { lightningstorReady, removeBuckets } from './storage-api.js';
import { workerVirtualization } from './worker-virtualization.js';

type Env = ClusterEnv<'iam' | 'plasmavmc' | 'plasmavmc-agent' | 'prismnet' | 'coronafs' | (typeof LIGHTNINGSTOR)[number]> & {
  state: RunState;
};

/** The lane's image buckets: one per run, named after the lane (a later run or the teardown removes them). */
export const imageBuckets = (lane: string) => `${lane}-images-`;

/** How long the workers may fetch the image by its presigned URLs (a VM started later on another worker fetches it then). */
const PRESIGNED_FOR_S = 3600;

/**
 * plasmavmc + prismnet + coronafs + lightningstor: the inner guest's kernel and initrd uploaded
 * to lightningstor as a tenant would (a real S3 client), imported into plasmavmc by presigned
 * URL, then a VM on each worker booted from it on a tenant network with a coronafs volume it
 * writes to (worker-virtualization, with this image).
 */
export const vmFromObjectImage: Step<Env> = {
  name: 'vm-from-object-image',
  proves:
    "the inner guest's kernel and initrd, uploaded to lightningstor through S3, are imported into plasmavmc by presigned URL with the digests of the uploaded bytes; a VM on each worker, on a tenant network with a coronafs volume, boots from that image (its worker verifies every fetched byte), reaches its ready marker and writes to its volume",
  needs: ['readiness'],
  run: async (ctx, step) => {
    const { services, state } = ctx;
    const { lightningstor, plasmavmc } = services;
    await lightningstorReady(services);
    const s3 = await lightningstor.s3();
    await removeBuckets(s3, imageBuckets(state.lane));

    step.phase('upload');
    const bucket = `${imageBuckets(state.lane)}${state.runId}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const from = services['plasmavmc-agent'].nodes()[0]!;
    /** One file of the workers' inner guest, uploaded as an object: its key, size, digest and presigned URL. */
    const upload = async (what: 'kernel' | 'initrd'): Promise<ImageDigest & { key: string; url: string }> => {
      const file = decodeURIComponent(new URL(plasmavmc.params.image[what]).pathname);
      const body = Buffer.from(await from.succeed(['base64', '-w0', file], { via: 'session', timeoutMs: 120_000 }), 'base64');
      const key = `inner-guest/${what}`;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      const url = await lightningstor.presignedGet(bucket, key, PRESIGNED_FOR_S);
      return { key, bytes: body.length, sha256: createHash('sha256').update(body).digest('hex'), url };
    };
    const uploaded = { kernel: await upload('kernel'), initrd: await upload('initrd') };
    await step.json('object-image.json', {
      bucket,
      uploaded: { kernel: { ...uploaded.kernel, url: undefined }, initrd: { ...uploaded.initrd, url: undefined } },
    });

    step.phase('boot');
    state.vmImage = { kernel: uploaded.kernel.url, initrd: uploaded.initrd.url };
    const booted = await workerVirtualization.run(ctx, step);
    const image = (await plasmavmc.images(state.hosted!.tenant)).find((i) => i.id === state.hosted!.image);
    for (const what of ['kernel', 'initrd'] as const) {
      const got = image?.digests[what];
      const want = uploaded[what];
      if (got?.sha256 !== want.sha256 || got.bytes !== want.bytes)
        throw new CheckFailed(
          `plasmavmc recorded ${what} of image ${state.hosted!.image} as ${JSON.stringify(got ?? null)}, but ${bucket}/${want.key} was uploaded as ${want.bytes} bytes with sha256 ${want.sha256}`,
        );
    }
    return `${bucket}: kernel ${uploaded.kernel.bytes} B, initrd ${uploaded.initrd.bytes} B imported as image ${state.hosted!.image}; ${String(booted)}`;
  },
};
