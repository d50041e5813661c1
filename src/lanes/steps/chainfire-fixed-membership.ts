import { CheckFailed } from '../../core/errors.js';
import { shellCommand } from '../../core/shell.js';
import type { ChainfireClient, Member } from '../../services/chainfire.js';
import type { ClusterEnv, Step } from '../lane.js';

/** Where the uninvited member listens on the node it tries from: ports no lab service takes. */
export const INTRUDER = { name: 'intruder', peerPort: 12380, clientPort: 12379 } as const;
/** etcd's answer to a member that is not in the cluster's membership (server.go's ValidateClusterAndAssignIDs). */
const REFUSED = /error validating peerURLs .*: (member count is unequal|unmatched member while checking PeerURLs.*)$/m;

/** How the live membership differs from the fixed one: [] when it is exactly the profile's members. */
export function membershipDrift(live: Member[], fixed: { name: string; peerURL: string }[]): string[] {
  const drift: string[] = [];
  for (const f of fixed) {
    const m = live.find((x) => x.name === f.name);
    if (!m) drift.push(`${f.name} is not a member`);
    else if (m.peerURLs.join(',') !== f.peerURL) drift.push(`${f.name} advertises ${m.peerURLs.join(',')}, not ${f.peerURL}`);
    else if (m.isLearner) drift.push(`${f.name} is a learner`);
  }
  for (const m of live)
    if (!fixed.some((f) => f.name === m.name))
      drift.push(
        `${m.name || '(unstarted)'} ${BigInt(m.id).toString(16)} at ${m.peerURLs.join(',')} is a ${m.isLearner ? 'learner' : 'voting member'} outside the fixed membership`,
      );
  return drift;
}

/**
 * A member outside the membership asks to join, as an operator adding a node would: a throwaway
 * etcd on `node` with the fixed members plus itself, `--initial-cluster-state existing`. The
 * cluster must turn it away; its data dir is removed either way.
 */
async function uninvitedJoin(chainfire: ChainfireClient, fixed: { name: string; peerURL: string }[]) {
  const node = chainfire.nodes()[0]!;
  const peer = `http://${node.ip}:${INTRUDER.peerPort}`;
  const initial = [...fixed.map((f) => `${f.name}=${f.peerURL}`), `${INTRUDER.name}=${peer}`].join(',');
  // The data dir is the script's own temp dir ("$d"); everything else is argv, quoted.
  const etcd = `${shellCommand([
    ...['timeout', '60', 'etcd', '--name', INTRUDER.name, '--initial-cluster-state', 'existing'],
    ...['--initial-cluster', initial, '--initial-cluster-token', 'ultracloud-lab'],
    ...['--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer],
    ...[
      '--listen-client-urls',
      `http://127.0.0.1:${INTRUDER.clientPort}`,
      '--advertise-client-urls',
      `http://127.0.0.1:${INTRUDER.clientPort}`,
    ],
  ])} --data-dir "$d"`;
  const r = await node.exec(`d=$(mktemp -d /var/tmp/ultracloud-intruder.XXXXXX); ${etcd} 2>&1; rc=$?; rm -rf "$d"; exit $rc`, {
    timeoutMs: 90_000,
  });
  return { node: node.name, peer, code: r.code, output: r.stdout.slice(-4000) };
}

/**
 * chainfire's fixed-membership boundary: the live membership is exactly the profile's members
 * (names, peer URLs, all voting), a member outside it is refused when it tries to join, and the
 * membership is unchanged afterwards. Membership changes are a rebuild, not a live operation.
 */
export const chainfireFixedMembership: Step<ClusterEnv<'chainfire'>> = {
  name: 'chainfire-fixed-membership',
  proves:
    "chainfire's membership is exactly the profile's fixed members, all voting; a member outside it that tries to join is refused by the cluster, and the membership is unchanged after",
  needs: ['readiness'],
  run: async ({ services: { chainfire } }, step) => {
    const nodes = chainfire.nodes();
    const fixed = nodes.map((n) => ({ name: n.name, peerURL: chainfire.peerUrl(n) }));
    const before = await chainfire.members(nodes[0]!);
    const drift = membershipDrift(before, fixed);
    await step.json('chainfire-membership.json', { fixed, live: before, drift });
    if (drift.length > 0)
      throw new CheckFailed(`chainfire's membership (as ${nodes[0]} lists it) is not the fixed one: ${drift.join('; ')}`);

    step.phase('uninvited join');
    const join = await uninvitedJoin(chainfire, fixed);
    const after = await chainfire.members(nodes.at(-1)!);
    await step.json('chainfire-join-refused.json', { ...join, membersAfter: after });
    if (join.code === 0 || join.code === 124 || !REFUSED.test(join.output))
      throw new CheckFailed(
        `chainfire did not refuse ${INTRUDER.name} joining from ${join.node} (${join.peer}): etcd ${join.code === 124 ? 'was still running after 60 s' : `exited ${join.code}`} without the membership refusal; its last words: ${join.output.slice(-400)}`,
      );
    const later = membershipDrift(after, fixed);
    if (later.length > 0) throw new CheckFailed(`chainfire's membership changed after the refused join: ${later.join('; ')}`);
    return `${fixed.length} fixed members; ${INTRUDER.name}'s join from ${join.node} refused: ${REFUSED.exec(join.output)?.[1]}`;
  },
};
