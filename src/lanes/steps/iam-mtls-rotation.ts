import path from 'node:path';
import { ClusterCa, type Leaf } from '../../cluster/cluster-ca.js';
import type { Node } from '../../cluster/node.js';
import { CheckFailed } from '../../core/errors.js';
import type { IamClient, MtlsOutcome } from '../../services/iam.js';
import type { ClusterEnv, Step } from '../lane.js';

const served = (o: MtlsOutcome) => o.status === 200;
const show = (o: MtlsOutcome) => (o.status !== undefined ? `HTTP ${o.status}` : `refused (${o.error})`);

/** iam's own log lines about mTLS since `since` (epoch seconds): why it turned a client away, and whether it checks revocation. */
async function tlsLog(iam: IamClient, node: Node, since: number): Promise<string[]> {
  const r = await node.exec(['journalctl', '-u', iam.unit, '-o', 'cat', '--since', `@${since}`]);
  return r.stdout.split('\n').filter((l) => /mTLS/.test(l));
}

/**
 * mTLS for iam's listener with the cluster CA the harness keeps per cluster: clients of the CA
 * get through, a client without a certificate or of another CA does not; a rotation (new server
 * and client certificates, the old client certificate revoked in the CA's CRL) serves the new
 * server certificate, accepts the new client and refuses the old one, which iam logs as revoked.
 */
export const iamMtlsRotation: Step<ClusterEnv<'iam'>> = {
  name: 'iam-mtls-rotation',
  proves:
    "iam's mTLS listener admits only clients of the per-cluster CA; after a rotation it presents the new server certificate, admits the new client certificate and refuses the old one, revoked in the CA's CRL",
  needs: ['readiness'],
  run: async ({ cluster, services: { iam } }, step) => {
    const node = iam.adminNode();
    const pki = path.join(cluster.paths.state, 'pki');
    const ca = await ClusterCa.open(path.join(pki, 'cluster-ca'));
    const caPem = await ca.cert;
    const server = (round: number) => ca.issue(`iam-${node.name}-${round}`, { server: { ips: ['127.0.0.1', node.ip], dns: [node.name] } });
    const ask = (client: Leaf | null) => iam.mtls(node, client, caPem);

    step.phase('first certificates');
    const [s1, c1] = [await server(1), await ca.issue('ops-client-1')];
    await iam.installTls(node, { ca: caPem, cert: s1.cert, key: s1.key, crl: await ca.crl() });
    const foreign = await (await ClusterCa.open(path.join(pki, 'foreign-ca'))).issue('intruder');
    const first = { c1: await ask(c1), none: await ask(null), foreign: await ask(foreign) };
    if (!served(first.c1) || first.c1.serverSerial !== s1.serial)
      throw new CheckFailed(
        `iam on ${node} did not serve ${c1.name} over mTLS with server certificate ${s1.serial}: ${show(first.c1)}, server ${first.c1.serverSerial}`,
      );
    for (const [who, o] of [
      ['a client without a certificate', first.none],
      ['a client of another CA', first.foreign],
    ] as const)
      if (served(o)) throw new CheckFailed(`iam on ${node} served ${who} over mTLS (${show(o)})`);

    step.phase('rotation');
    const since = Math.floor(Date.now() / 1000);
    const [s2, c2] = [await server(2), await ca.issue('ops-client-2')];
    await ca.revoke(c1);
    await iam.installTls(node, { ca: caPem, cert: s2.cert, key: s2.key, crl: await ca.crl() });
    const second = { c2: await ask(c2), c1: await ask(c1) };
    const log = await tlsLog(iam, node, since);
    await step.json('iam-mtls-rotation.json', {
      node: node.name,
      ca: path.join(pki, 'cluster-ca'),
      first: { server: s1.serial, client: c1.serial, outcomes: first },
      rotated: { server: s2.serial, client: c2.serial, revoked: c1.serial, outcomes: second },
      iamLog: log,
    });
    if (!served(second.c2) || second.c2.serverSerial !== s2.serial)
      throw new CheckFailed(
        `after the rotation iam on ${node} did not serve ${c2.name} with server certificate ${s2.serial}: ${show(second.c2)}, server ${second.c2.serverSerial}`,
      );
    if (served(second.c1)) {
      const crlOff = log.find((l) => /without a CRL/.test(l));
      throw new CheckFailed(
        `after the rotation iam on ${node} still serves ${c1.name} (serial ${c1.serial}), revoked in the cluster CA's CRL${crlOff ? `: iam says "${crlOff}"` : ''}`,
      );
    }
    const revoked = log.find((l) => /revoked/i.test(l));
    if (!revoked)
      throw new CheckFailed(
        `iam on ${node} refused ${c1.name} after the rotation, but its log does not say it was revoked: ${log.join(' | ')}`,
      );
    return `server ${s1.serial} -> ${s2.serial}; ${c2.name} admitted, ${c1.name} refused: "${revoked}"`;
  },
};
