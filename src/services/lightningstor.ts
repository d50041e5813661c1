import { GetObjectCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { z } from 'zod';
import type { Node } from '../cluster/node.js';
import { CheckFailed, UsageError } from '../core/errors.js';
import { http } from '../probes/http.js';
import { defineService, ServiceClient } from './service.js';

const Params = z.strictObject({
  /** The S3 region the proxy's s3api answers for (its `location`): SigV4 signs with it. */
  region: z.string().default('ultracloud-lab'),
  /** The lab's S3 user: access key `account:user` (tempauth), its secret in this file on the proxy node. */
  accessKey: z.string().default('lab:s3'),
  secretFile: z.string().startsWith('/').default('/etc/ultracloud/lightningstor/s3.secret'),
});
type Params = z.output<typeof Params>;

/**
 * lightningstor: Swift's proxy with s3api, spoken to as any S3 user does, with a real S3 client
 * (`@aws-sdk/client-s3`, SigV4, path-style) through the proxy node's forwarded port.
 */
export class LightningstorClient extends ServiceClient<Params> {
  private client: S3Client | undefined;
  private inCluster: S3Client | undefined;
  private secret: Promise<string> | undefined;

  proxyNode(): Node {
    const [n] = this.nodes();
    if (!n) throw new UsageError('no node runs lightningstor');
    return n;
  }

  /** The proxy's own health check (Swift's healthcheck middleware), from the node itself. */
  async health(): Promise<string> {
    const node = this.proxyNode();
    const r = await http('GET', `${await node.url(this.svc.port('s3'))}/healthcheck`, { timeoutMs: 10_000 });
    if (r.status !== 200)
      throw new CheckFailed(`lightningstor's proxy on ${node}: /healthcheck answered ${r.status}; ${await this.describe(node)}`);
    return r.text.trim();
  }

  /** One S3 client per run (its credentials read once from the proxy node). */
  async s3(): Promise<S3Client> {
    this.client ??= new S3Client(await this.config(await this.proxyNode().url(this.svc.port('s3'))));
    return this.client;
  }

  /**
   * A presigned GET of an object as the cluster's own nodes reach it (the proxy's cluster address:
   * SigV4 signs the host), e.g. for plasmavmc to import an image from. Signing is offline.
   */
  async presignedGet(bucket: string, key: string, expiresInS = 3600): Promise<string> {
    return getSignedUrl(await this.inClusterClient(), new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: expiresInS });
  }

  /** A presigned PUT of one key, as the cluster's nodes (and guests with egress) reach the proxy: each use writes a new version. */
  async presignedPut(bucket: string, key: string, expiresInS = 3600): Promise<string> {
    return getSignedUrl(await this.inClusterClient(), new PutObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: expiresInS });
  }

  private async inClusterClient(): Promise<S3Client> {
    this.inCluster ??= new S3Client(await this.config(`http://${this.proxyNode().spec.ip}:${this.svc.port('s3')}`));
    return this.inCluster;
  }

  private async config(endpoint: string): Promise<S3ClientConfig> {
    this.secret ??= this.proxyNode()
      .succeed(['cat', this.svc.params.secretFile])
      .then((s) => s.trim());
    // These machines run Node 20, which the locked SDK supports; its notice about later versions is noise in a lane's log.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    return {
      endpoint,
      region: this.svc.params.region,
      forcePathStyle: true,
      credentials: { accessKeyId: this.svc.params.accessKey, secretAccessKey: await this.secret },
      maxAttempts: 1,
    };
  }
}

export const lightningstor = defineService({
  name: 'lightningstor',
  description: "object storage with S3 (lab: Swift's proxy with s3api and object versioning)",
  params: Params,
  client: (svc) => new LightningstorClient(svc),
});

/** One kind of Swift storage server (object, container, account): a unit on its nodes, named in failures. */
const storageServer = (name: string, description: string) =>
  defineService({ name, description, params: z.strictObject({}), client: (svc) => new ServiceClient(svc) });

export const lightningstorObject = storageServer('lightningstor-object', "lightningstor's Swift object servers (workers)");
export const lightningstorContainer = storageServer('lightningstor-container', "lightningstor's Swift container servers");
export const lightningstorAccount = storageServer('lightningstor-account', "lightningstor's Swift account servers");

/** lightningstor's services: the S3 proxy and its storage servers (all deferred: they start after boot). */
export const LIGHTNINGSTOR = ['lightningstor', 'lightningstor-object', 'lightningstor-container', 'lightningstor-account'] as const;
