import { z } from 'zod';
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
});
type Params = z.output<typeof Params>;

export interface Token {
  token: string;
  keyId: string;
  claims: Record<string, unknown>;
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
    // A restarted Node service takes seconds to listen under TCG.
    await waitFor(`iam on ${node} serves again after its restart`, { timeoutMs: 60_000, intervalMs: 250 }, () => this.health(node));
  }
}

export const iam = defineService({
  name: 'iam',
  description: 'identity and token issuance (lab: HMAC signing key kept in chainfire)',
  params: Params,
  client: (svc) => new IamClient(svc),
});
