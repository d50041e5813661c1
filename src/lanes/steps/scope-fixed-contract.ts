import { CheckFailed } from '../../core/errors.js';
import type { ClusterEnv, Step } from '../lane.js';
import { fleetAdmin } from './fleet-observe.js';

type Env = ClusterEnv<'iam' | 'deployer' | 'fleet-scheduler' | 'node-agent' | 'chainfire' | 'flaredb'>;

/** The release boundary the seeds fix for the rollout services, as the lane checks it on the live cluster. */
const CONTRACT = {
  deployer:
    'one active writer (deployer.service on the bootstrap node only), restart or cold-standby restore; no ChainFire-backed multi-instance failover',
  'fleet-scheduler':
    'one leader by a chainfire lease; drain (maintenance) and fail-stop failover on the native-runtime workers; replicas restored when a worker returns',
  'node-agent':
    'host-local reconcile only: instances as systemd units, pid metadata under its state dir (pids/), upgrades are replace-and-reconcile',
  'nix-agent':
    'not run by steady-state nodes: its restart and rollback are proven by the bare-metal lane, so this lane records scope markers',
  chainfire: 'fixed membership',
  flaredb: 'one primary streaming to fixed standbys',
};

/**
 * The supported release boundary recorded with the runtime evidence (the seeds' scope files), each
 * claim checked on the live cluster first: where the deployer runs, that exactly one scheduler
 * leads, where node-agent keeps its pid metadata, that no node runs nix-agent.
 */
export const scopeFixedContract: Step<Env> = {
  name: 'scope-fixed-contract',
  proves:
    "the release boundary holds on the live cluster and is recorded: deployer.service active on the bootstrap node only, exactly one fleet-scheduler leading, node-agent's pid metadata under its state dir, nix-agent installed on no node (scope markers instead of a pretended restart)",
  needs: ['readiness'],
  run: async ({ cluster, services }, step) => {
    const { deployer, iam } = services;
    const fleet = services['fleet-scheduler'];
    const agents = services['node-agent'];
    await Promise.all([deployer.ready(), agents.ready()]); // deferred: they start once the boot is done

    const deployerUnits = Object.fromEntries(
      await Promise.all(cluster.nodes().map(async (n) => [n.name, (await n.unitStates([deployer.unit]))[deployer.unit]] as const)),
    );
    const writers = Object.entries(deployerUnits)
      .filter(([, s]) => s === 'active')
      .map(([n]) => n);
    if (writers.length !== 1 || writers[0] !== deployer.node().name)
      throw new CheckFailed(
        `deployer.service is active on ${writers.join(', ') || 'no node'}: one active writer, on ${deployer.node()}, was due`,
      );

    const who = await fleetAdmin(iam);
    const leader = await fleet.leader(who);
    const leading = await Promise.all(fleet.nodes().map(async (n) => ({ node: n.name, leading: (await fleet.health(n)).leading })));
    const leaders = leading.filter((l) => l.leading).map((l) => l.node);
    if (leaders.length !== 1 || leader?.node !== leaders[0])
      throw new CheckFailed(
        `fleet-scheduler: ${leaders.length} instance(s) say they lead (${leaders.join(', ')}), the leader key names ${leader?.node ?? 'none'}`,
      );

    const pids = await Promise.all(
      agents.nodes().map(async (n) => ({ node: n.name, pidsDir: (await n.exec(['test', '-d', '/var/lib/node-agent/pids'])).code === 0 })),
    );
    const noPids = pids.filter((p) => !p.pidsDir).map((p) => p.node);
    if (noPids.length) throw new CheckFailed(`node-agent keeps no pid metadata dir on ${noPids.join(', ')}`);

    const nixAgent = await Promise.all(
      cluster.nodes().map(async (n) => ({ node: n.name, installed: (await n.exec(['systemctl', 'cat', 'nix-agent.service'])).code === 0 })),
    );
    const running = nixAgent.filter((x) => x.installed).map((x) => x.node);
    if (running.length)
      throw new CheckFailed(`nix-agent.service is installed on ${running.join(', ')}: the steady-state contract says no node runs it`);

    const at = new Date().toISOString();
    await step.json('scope-fixed-contract.json', {
      at,
      contract: CONTRACT,
      observed: { deployerUnits, fleetLeader: leader, fleetLeading: leading, nodeAgentPids: pids, nixAgent },
    });
    await step.evidence(
      'deployer-scope-fixed.txt',
      `deployer scope (fixed for this release), checked ${at}\n${CONTRACT.deployer}\nobserved: deployer.service ${Object.entries(
        deployerUnits,
      )
        .map(([n, s]) => `${n}=${s}`)
        .join(' ')}\n`,
    );
    await step.evidence(
      'fleet-scheduler-scope-fixed.txt',
      `fleet-scheduler scope (fixed for this release), checked ${at}\n${CONTRACT['fleet-scheduler']}\nnode-agent: ${CONTRACT['node-agent']}\nobserved: leader ${leader?.node} (${leader?.id}), leading per instance ${leading.map((l) => `${l.node}=${l.leading}`).join(' ')}\n`,
    );
    await step.evidence(
      'nix-agent-scope-markers.txt',
      `${nixAgent.map((x) => `nix-agent-scope node=${x.node} nix-agent.service=not-installed steady-state=true restart=not-exercised (bare-metal lane proves it)`).join('\n')}\n`,
    );
    return `deployer on ${writers[0]} only; fleet-scheduler led by ${leaders[0]}; node-agent pid metadata on ${pids.length} workers; nix-agent on no node (${nixAgent.length} markers)`;
  },
};
