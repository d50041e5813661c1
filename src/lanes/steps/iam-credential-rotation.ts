import { CheckFailed } from '../../core/errors.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';

/**
 * A service credential's life: made by an admin, exchanged for tokens on any node, rotated; the
 * old secret is refused on every node from then on, the new one works on every node, and a
 * token the old secret got before the rotation lives out its ttl.
 */
export const iamCredentialRotation: Step<ClusterEnv<'iam'> & { state: RunState }> = {
  name: 'iam-credential-rotation',
  proves:
    'a service credential made by an admin issues tokens on every iam node; after its rotation the old secret is refused on every node and the new one issues on every node; tokens issued before live out their ttl',
  needs: ['readiness'],
  run: async ({ services: { iam }, state }, step) => {
    const nodes = iam.nodes();
    const admin = await iam.adminToken();
    const id = `ops-${state.runId}`;
    const made = await iam.call(nodes[0]!, 'POST', '/v1/credentials', {
      body: { id, subject: id, scopes: ['credit:reserve'] },
      token: admin,
    });
    if (made.status !== 201)
      throw new CheckFailed(`iam on ${nodes[0]} did not make credential ${id}: ${made.status} ${JSON.stringify(made.body)}`);
    const exchange = (secret: string) =>
      Promise.all(
        nodes.map(async (n) => ({
          node: n.name,
          ...(await iam.call(n, 'POST', iam.paths().issue, { body: { credential: { id, secret } } })),
        })),
      );
    const before = await exchange(made.body.secret as string);
    const notIssued = before.filter((r) => r.status !== 201 || r.body.claims?.sub !== id);
    if (notIssued.length)
      throw new CheckFailed(`credential ${id} did not issue on ${notIssued.map((r) => `${r.node} (${r.status})`).join(', ')}`);

    step.phase('rotate');
    const rotated = await iam.call(nodes.at(-1)!, 'POST', `/v1/credentials/${id}/rotate`, { token: admin });
    if (rotated.status !== 200)
      throw new CheckFailed(`iam on ${nodes.at(-1)} refused to rotate ${id}: ${rotated.status} ${JSON.stringify(rotated.body)}`);
    const oldSecret = await exchange(made.body.secret as string);
    const newSecret = await exchange(rotated.body.secret as string);
    const earlier = await iam.verify(nodes[1]!, before[0]!.body.token as string);
    const strip = (rs: typeof before) => rs.map((r) => ({ node: r.node, status: r.status, error: r.body.error, keyId: r.body.keyId }));
    await step.json('iam-credential-rotation.json', {
      credential: { ...made.body, secret: undefined },
      rotatedAt: rotated.body.rotatedAt,
      before: strip(before),
      oldSecretAfter: strip(oldSecret),
      newSecretAfter: strip(newSecret),
      tokenFromBefore: earlier,
    });
    const stillOld = oldSecret.filter((r) => r.status !== 401);
    if (stillOld.length)
      throw new CheckFailed(
        `after rotating ${id} its old secret still issues on ${stillOld.map((r) => `${r.node} (${r.status})`).join(', ')}`,
      );
    const notNew = newSecret.filter((r) => r.status !== 201);
    if (notNew.length)
      throw new CheckFailed(
        `the rotated secret of ${id} is refused on ${notNew.map((r) => `${r.node} (${r.status} ${r.body.error})`).join(', ')}`,
      );
    if (!earlier.valid) throw new CheckFailed(`a token ${id} got before the rotation was refused on ${nodes[1]}: ${earlier.reason}`);
    return `${id} rotated: old secret refused on ${nodes.length} nodes, new one issues on ${nodes.length}`;
  },
};
