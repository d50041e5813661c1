import { CheckFailed } from '../../core/errors.js';
import type { ClusterEnv, Step } from '../lane.js';

/** A token issued on one iam node verifies on another (the shared key in chainfire); a tampered one is refused. */
export const iamTokens: Step<ClusterEnv<'iam'>> = {
  name: 'iam-tokens',
  proves: 'a token issued on node01 verifies on node03; a tampered token is refused',
  needs: ['readiness'],
  run: async ({ services: { iam } }, step) => {
    const nodes = iam.nodes();
    const issuer = nodes[0]!;
    const verifier = nodes.at(-1)!;
    const issued = await iam.issue(issuer, { subject: 'smoke', scopes: ['credit:reserve'], ttlSeconds: 600 });
    const ok = await iam.verify(verifier, issued.token);
    const [h, p, s] = issued.token.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'admin' })).toString('base64url')}.${s}`;
    const bad = await iam.verify(verifier, tampered);
    await step.json('iam.json', { issuer: issuer.name, verifier: verifier.name, issued, verify: ok, tampered: bad });
    if (!ok.valid)
      throw new CheckFailed(
        `token issued on ${issuer} (key ${issued.keyId}) was refused by ${verifier} (key ${ok.keyId}): ${ok.reason ?? `HTTP ${ok.status}`}`,
      );
    if (bad.status !== 401) throw new CheckFailed(`a tampered token was accepted by ${verifier} (status ${bad.status})`);
    return `token issued on ${issuer} verified on ${verifier}; tampered token refused (${bad.reason})`;
  },
};
