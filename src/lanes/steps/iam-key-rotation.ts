import { CheckFailed } from '../../core/errors.js';
import { waitFor } from '../../core/retry.js';
import type { IamClient, Token } from '../../services/iam.js';
import type { ClusterEnv, Step } from '../lane.js';

/** How long the retired key keeps verifying its tokens in this step: long enough to check every node inside it. */
export const ROTATION_GRACE_SECONDS = 20;

/** Every iam node's verdict on `token`. */
const verdicts = (iam: IamClient, token: string) =>
  Promise.all(iam.nodes().map(async (n) => ({ node: n.name, ...(await iam.verify(n, token)) })));

/**
 * iam's signing-key rotation: the new key signs on every node as soon as it is active; a token
 * of the retired key verifies everywhere until its window ends and nowhere after; tokens of the
 * new key verify throughout.
 */
export const iamKeyRotation: Step<ClusterEnv<'iam'>> = {
  name: 'iam-key-rotation',
  proves: `after a signing-key rotation every iam node signs with the new key; a token of the retired key verifies on every node for its ${ROTATION_GRACE_SECONDS}-s window and is refused after it, naming the retirement; new tokens verify throughout`,
  needs: ['readiness'],
  run: async ({ services: { iam } }, step) => {
    const [first, second] = iam.nodes();
    const before = (await iam.call(first!, 'GET', '/v1/keys')).body;
    const old = await iam.issue(second!, { subject: 'rotation-old', ttlSeconds: 600 });

    step.phase('rotate');
    const rotated = await iam.call(first!, 'POST', '/v1/keys/rotate', {
      body: { graceSeconds: ROTATION_GRACE_SECONDS },
      token: await iam.adminToken(),
    });
    if (rotated.status !== 200)
      throw new CheckFailed(`iam on ${first} refused the rotation: ${rotated.status} ${JSON.stringify(rotated.body)}`);
    const { active, retired } = rotated.body as { active: string; retired: { kid: string; verifyUntil: string } };
    if (retired.kid !== old.keyId)
      throw new CheckFailed(`iam retired key ${retired.kid}, not ${old.keyId}, the key that signed before the rotation`);

    const inWindow = await verdicts(iam, old.token);
    const refusedEarly = inWindow.filter((v) => !v.valid);
    if (refusedEarly.length)
      throw new CheckFailed(
        `inside its window (until ${retired.verifyUntil}) a token of retired key ${retired.kid} was refused by ${refusedEarly.map((v) => `${v.node} (${v.reason})`).join(', ')}`,
      );
    const fresh: Token[] = await waitFor(
      `every iam node signs with the new key ${active}`,
      { timeoutMs: 30_000, intervalMs: 500 },
      async () => {
        const issued = await Promise.all(iam.nodes().map((n) => iam.issue(n, { subject: 'rotation-new', ttlSeconds: 600 })));
        const stale = issued.map((t, i) => ({ t, node: iam.nodes()[i]! })).filter(({ t }) => t.keyId !== active);
        if (stale.length) throw new CheckFailed(`${stale.map(({ node, t }) => `${node} signs with ${t.keyId}`).join(', ')}`);
        return issued;
      },
    );

    step.phase('window ends');
    const wait = Date.parse(retired.verifyUntil) - Date.now() + 1000;
    if (wait > 0) await new Promise((ok) => setTimeout(ok, wait));
    const after = await verdicts(iam, old.token);
    const keys = (await iam.call(first!, 'GET', '/v1/keys')).body;
    const freshAfter = await Promise.all(fresh.map((t) => verdicts(iam, t.token)));
    await step.json('iam-key-rotation.json', {
      before,
      rotated: rotated.body,
      oldToken: { keyId: old.keyId },
      inWindow,
      fresh: fresh.map((t) => t.keyId),
      after,
      freshAfter,
      keys,
    });
    const kept = after.filter((v) => v.valid);
    if (kept.length) {
      const record = (keys.keys as { kid: string }[]).find((k) => k.kid === retired.kid);
      throw new CheckFailed(
        `${kept.map((v) => v.node).join(', ')} still accept a token of retired key ${retired.kid} after its window ended at ${retired.verifyUntil}: the key set now lists it as ${JSON.stringify(record)}`,
      );
    }
    const why = after.find((v) => !/retired/.test(v.reason ?? ''));
    if (why) throw new CheckFailed(`${why.node} refused the retired key's token for another reason: ${why.reason}`);
    const badFresh = freshAfter.flat().filter((v) => !v.valid);
    if (badFresh.length)
      throw new CheckFailed(`tokens of the new key ${active} were refused: ${badFresh.map((v) => `${v.node}: ${v.reason}`).join('; ')}`);
    return `key ${retired.kid} -> ${active}; its tokens verified on ${inWindow.length} nodes in the window and were refused after it`;
  },
};
