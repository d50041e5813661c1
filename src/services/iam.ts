import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { z } from 'zod';
import type { Leaf } from '../cluster/cluster-ca.js';
import type { Node } from '../cluster/node.js';
import { CheckFailed } from '../core/errors.js';
import { waitFor } from '../core/retry.js';
import { shellQuote } from '../core/shell.js';
import { http } from '../probes/http.js';
import { defineService, ServiceClient } from './service.js';

const apiPath = z.string().startsWith('/');
const Params = z.strictObject({
  issuePath: apiPath,
  verifyPath: apiPath,
  /**
   * Where a node's iam takes a signing-key override from (an env file its unit reads): what the
   * `iam-wrong-key` fault writes. Without it the profile's iam cannot be given a wrong key.
   */
  signingKeyOverride: z.strictObject({ envFile: z.string().startsWith('/'), variable: z.string().regex(/^[A-Z_][A-Z0-9_]*$/) }).optional(),
  /**
   * Where iam's root-only credential files live on its nodes (admin.secret on the bootstrap node;
   * tls-ca.pem, tls-cert.pem, tls-key.pem, tls-crl.pem), and the port its mTLS listener takes
   * once they hold TLS material. Without it the profile's iam has no admin or mTLS surface.
   */
  credentials: z.strictObject({ dir: z.string().startsWith('/'), mtlsPort: z.number().int().min(1).max(65535) }).optional(),
});
type Params = z.output<typeof Params>;

export interface Token {
  token: string;
  keyId: string;
  claims: Record<string, unknown>;
}

export interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: iam's JSON bodies, read field by field
  body: Record<string, any>;
}

/** The TLS material iam's mTLS listener serves with (PEM); crl empty: revocation not checked. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
  crl: string;
}

/** What an mTLS request got: an answer, or the error the handshake or connection failed with. */
export interface MtlsOutcome {
  status?: number;
  body?: Record<string, unknown>;
  /** The serial of the certificate the server presented. */
  serverSerial?: string;
  error?: string;
}

export interface Verdict {
  status: number;
  valid: boolean;
  reason?: string;
  keyId?: string;
}

export class IamClient extends ServiceClient<Params> {
  private base(node: Node): Promise<string> {
    return node.url(this.svc.port('api'));
  }

  /** The issue/verify paths under any base URL that reaches iam (a node, or the gateway's prefix). */
  paths(): { issue: string; verify: string } {
    return { issue: this.svc.params.issuePath, verify: this.svc.params.verifyPath };
  }

  async issue(node: Node, claims: { subject: string; scopes?: string[]; ttlSeconds?: number }): Promise<Token> {
    const r = await http('POST', `${await this.base(node)}${this.svc.params.issuePath}`, { body: claims });
    if (r.status !== 201) throw new CheckFailed(`iam on ${node} did not issue a token: ${r.status} ${r.text.slice(0, 300)}`);
    return r.json as Token;
  }

  async verify(node: Node, token: string): Promise<Verdict> {
    const r = await http('POST', `${await this.base(node)}${this.svc.params.verifyPath}`, { body: { token } });
    const b = (r.json ?? {}) as { valid?: boolean; reason?: string; keyId?: string };
    return { status: r.status, valid: r.status === 200 && b.valid === true, reason: b.reason, keyId: b.keyId };
  }

  /** One JSON call to `node`'s iam, with a bearer token when given; any status is an answer. */
  async call(node: Node, method: string, path: string, o: { body?: unknown; token?: string } = {}): Promise<Answer> {
    const r = await http(method, `${await this.base(node)}${path}`, {
      body: o.body,
      headers: o.token ? { authorization: `Bearer ${o.token}` } : {},
    });
    return { status: r.status, body: (r.json ?? {}) as Answer['body'] };
  }

  /** Where iam's root-only credential files are on its nodes. */
  credentialsDir(): string {
    return this.creds().dir;
  }

  private creds(): { dir: string; mtlsPort: number } {
    const c = this.svc.params.credentials;
    if (!c)
      throw new CheckFailed(`the ${this.svc.name} contract has no params.credentials: this profile's iam has no admin or mTLS surface`);
    return c;
  }

  /** Read once per run: the bootstrap file never changes after the node made it. */
  private adminSecret: string | null = null;

  /** The node that holds the admin bootstrap secret: the bootstrap node among iam's, else its first. */
  adminNode(): Node {
    const nodes = this.nodes();
    return nodes.find((n) => n.hasRole('bootstrap')) ?? nodes[0]!;
  }

  /** An admin token: the bootstrap secret (read as root over SSH; guests never see it) exchanged on its node. */
  async adminToken(): Promise<string> {
    const node = this.adminNode();
    this.adminSecret ??= (await node.succeed(['cat', `${this.creds().dir}/admin.secret`])).trim();
    const secret = this.adminSecret;
    if (!secret) throw new CheckFailed(`${node}: ${this.creds().dir}/admin.secret is empty: iam's admin was never bootstrapped there`);
    const r = await this.call(node, 'POST', this.svc.params.issuePath, { body: { credential: { id: 'admin', secret }, ttlSeconds: 900 } });
    if (r.status !== 201)
      throw new CheckFailed(`iam on ${node} refused the bootstrap admin credential: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.token as string;
  }

  /** Install TLS material on `node` (root-only files) and restart its iam, which then serves mTLS; waits until it answers. */
  async installTls(node: Node, files: TlsFiles): Promise<void> {
    const { dir } = this.creds();
    for (const [name, pem] of Object.entries(files))
      await node.succeed(['sh', '-c', 'umask 077 && cat > "$1"', 'sh', `${dir}/tls-${name}.pem`], { stdin: pem, via: 'session' });
    await node.succeed(['systemctl', 'restart', this.svc.unit], { timeoutMs: 200_000 });
    await this.waitHealthy(node);
  }

  /** GET `path` on `node`'s mTLS listener, as `client` (or with no certificate), trusting `ca`. */
  async mtls(node: Node, client: Leaf | null, ca: string, path = '/v1/whoami'): Promise<MtlsOutcome> {
    const port = await node.forward(this.creds().mtlsPort);
    return new Promise((resolve) => {
      const req = https.request(
        { host: '127.0.0.1', port, path, ca, ...(client ? { cert: client.cert, key: client.key } : {}), timeout: 15_000, agent: false },
        (res) => {
          const serverSerial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
          let raw = '';
          res.on('data', (d) => (raw += d));
          res.on('end', () => {
            let body: Record<string, unknown> = {};
            try {
              body = JSON.parse(raw) as Record<string, unknown>;
            } catch {
              body = { text: raw.slice(0, 200) };
            }
            resolve({ status: res.statusCode, body, serverSerial });
          });
          res.on('error', (e) => resolve({ error: e.message }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 15 s')));
      req.on('error', (e) => resolve({ error: e.message }));
      req.end();
    });
  }

  /** After a restart: a Node service takes seconds to listen under TCG. */
  waitHealthy(node: Node): Promise<void> {
    return waitFor(`iam on ${node} serves again after its restart`, { timeoutMs: 60_000, intervalMs: 250 }, () => this.health(node));
  }

  async health(node: Node): Promise<void> {
    const r = await http('GET', `${await this.base(node)}/health`, { timeoutMs: 5000 });
    if (r.status !== 200) throw new CheckFailed(`iam on ${node}: /health answered ${r.status}`);
  }

  /** Make `node`'s iam sign and verify with `key` (null: back to the cluster's key), then wait until it serves again. */
  async overrideSigningKey(node: Node, key: string | null): Promise<void> {
    const o = this.svc.params.signingKeyOverride;
    if (!o)
      throw new CheckFailed(
        `the ${this.svc.name} contract has no params.signingKeyOverride: this profile's iam cannot be given another key`,
      );
    const line = key === null ? '' : `${o.variable}=${key}`;
    await node.succeed(`printf '%s\\n' ${shellQuote(line)} > ${shellQuote(o.envFile)} && systemctl restart ${shellQuote(this.svc.unit)}`);
    await this.waitHealthy(node);
  }
}

export const iam = defineService({
  name: 'iam',
  description: 'identity and token issuance (lab: HMAC signing key kept in chainfire)',
  params: Params,
  client: (svc) => new IamClient(svc),
});
