import type { Node } from '../../cluster/node.js';
import { CheckFailed } from '../../core/errors.js';
import { StopWaiting, waitFor } from '../../core/retry.js';
import { seconds } from '../../core/time.js';
import type { ClusterEnv, Step } from '../lane.js';
import { observeFleet } from './fleet-observe.js';
import { afterCycles, ROLLOUT_SPECS, type RolloutEnv } from './rollout-cycles.js';

type Env = RolloutEnv & ClusterEnv<'deployer' | 'chainfire' | 'flaredb'>;

interface Restart {
  service: string;
  node: string;
  unit: string;
  /** `systemctl restart` until the unit is active again. */
  restartMs: number;
  /** Then until the check below held. */
  checkedMs: number;
  check: string;
}

/** Each unit's main pid on the node, as systemd has it (0: not running). */
async function mainPids(node: Node, units: string[]): Promise<Record<string, number>> {
  if (units.length === 0) return {};
  // One call: systemctl prints each unit's value in the order asked, a blank line between them.
  const values = (await node.succeed(['systemctl', 'show', '-p', 'MainPID', '--value', ...units])).trim().split(/\n+/);
  if (values.length !== units.length)
    throw new CheckFailed(`${node}: systemctl show gave ${values.length} MainPID values for ${units.length} units`);
  return Object.fromEntries(units.map((u, i) => [u, Number(values[i])]));
}

/**
 * The rollout services and the fixed-membership control plane restarted one at a time, each
 * followed by the check that it is back doing its job: deployer (its pre-registered machine still
 * listed), fleet-scheduler (control-apis.service on the leader's node: a leader again, the
 * placements unchanged), node-agent on each worker (the instances keep running, same pids:
 * replace-and-reconcile), chainfire on each member (every member agrees on one leader), flaredb
 * standbys then the primary (streaming again to every standby).
 */
export const rolloutRestarts: Step<Env> = {
  name: 'rollout-restarts',
  proves:
    "deployer, fleet-scheduler, node-agent, chainfire and flaredb each restarted, one node at a time, and each back at its job: the deployer's pre-registered machine kept, one scheduler leading with the placements unchanged, every instance still running with the same pid across its node-agent's restart, chainfire members agreeing on a leader, flaredb's primary streaming to every standby",
  needs: ['worker-loss-cycle'],
  run: async (ctx, step) => {
    const { deployer, chainfire, flaredb } = ctx.services;
    const fleet = ctx.services['fleet-scheduler'];
    const agents = ctx.services['node-agent'];
    const who = ctx.rollout.who!;
    const [w1, w2] = agents.nodes() as [Node, Node];
    const want = afterCycles(ctx);
    const restarts: Restart[] = [];
    const restart = async (service: string, node: Node, unit: string, check: () => Promise<string>) => {
      step.phase(`${service} on ${node}`);
      const t0 = Date.now();
      await node.succeed(['systemctl', 'restart', unit], { timeoutMs: 240_000 });
      const restartMs = Date.now() - t0;
      const said = await waitFor(`${service} on ${node} back at its job after its restart`, { timeoutMs: 120_000, progress: step }, check);
      restarts.push({ service, node: node.name, unit, restartMs, checkedMs: Date.now() - t0 - restartMs, check: said });
    };

    try {
      await deployer.ready();
      const machine = { id: `rs-${ctx.state.runId}`, machine_id: `rollout-machine-${ctx.state.runId}`, class: 'lab-worker' };
      const reg = await deployer.preRegister(machine);
      if (reg.status !== 201) throw new CheckFailed(`deployer on ${deployer.node()}: pre-registering ${machine.id} answered ${reg.status}`);
      await restart('deployer', deployer.node(), deployer.unit, async () => {
        if (!(await deployer.list())[machine.id]) throw new CheckFailed(`${machine.id} is not listed`);
        return `${machine.id} still registered`;
      });

      const leader = (await fleet.leader(who))?.node;
      const leaderNode = fleet.nodes().find((n) => n.name === leader) ?? fleet.nodes()[0]!;
      await restart('fleet-scheduler', leaderNode, fleet.unit, async () => {
        const now = await fleet.leader(who);
        const holder = fleet.nodes().find((n) => n.name === now?.node);
        // The key outlives a killed leader until its lease expires: the instance it names must say it leads.
        if (!now || !holder || !(await fleet.health(holder)).leading)
          throw new CheckFailed(`no live scheduler leads (the leader key names ${now?.id ?? 'none'})`);
        await observeFleet(ctx, who, ROLLOUT_SPECS, want);
        return `leader ${now.node}, placements unchanged`;
      });

      for (const node of [w1, w2]) {
        // systemd's MainPID, not the agent's pid files: those are rewritten only once it has reconciled.
        const units = (await agents.instances(node)).map((i) => i.unit);
        const before = await mainPids(node, units);
        await restart('node-agent', node, agents.unit, async () => {
          await agents.instances(node); // the agent answers again
          const after = await mainPids(node, units);
          const moved = units.filter((u) => after[u] !== before[u]);
          if (moved.length)
            throw new StopWaiting(
              `${node}'s instances were restarted by its node-agent's restart (replace-and-reconcile keeps them): ${moved.map((u) => `${u} pid ${before[u]} -> ${after[u] || 'none'}`).join(', ')}`,
            );
          await observeFleet(ctx, who, ROLLOUT_SPECS, want);
          return `${units.length} instance(s), same pids`;
        });
      }

      for (const node of chainfire.nodes())
        await restart('chainfire', node, chainfire.unit, async () => {
          const st = await Promise.all(chainfire.nodes().map((n) => chainfire.status(n)));
          const leaders = new Set(st.map((s) => s.leader));
          if (leaders.size !== 1 || leaders.has('0')) throw new CheckFailed(`members see leaders ${[...leaders].join(', ')}`);
          return `members agree on leader ${st[0]!.leader}`;
        });

      for (const node of [...flaredb.standbys(), flaredb.primary()])
        await restart('flaredb', node, flaredb.unit, async () => {
          const streaming = (await flaredb.replication()).filter((r) => r.state === 'streaming').map((r) => r.application_name);
          if (streaming.length !== flaredb.expectedStandbys()) throw new CheckFailed(`the primary streams to [${streaming.join(', ')}]`);
          return `streaming to ${streaming.join(', ')}`;
        });
      return restarts.map((r) => `${r.service}@${r.node} ${seconds(r.restartMs + r.checkedMs)}`).join(', ');
    } finally {
      await step.json('rollout-restarts.json', restarts);
    }
  },
};
