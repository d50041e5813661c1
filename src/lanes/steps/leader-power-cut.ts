import { CheckFailed } from '../../core/errors.js';
import { waitFor } from '../../core/retry.js';
import { seconds } from '../../core/time.js';
import { powerCut } from '../../faults/power.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';

/** Jepsen's kill of the leader: survivors elect a new one and accept writes; the node comes back on its disk and catches up. */
export const leaderPowerCut: Step<ClusterEnv<'chainfire'> & { state: RunState }> = {
  name: 'fault-injection',
  proves:
    'power-cut (QMP quit) of the chainfire leader; survivors elect a leader and accept writes; the node restarts on its disk and catches up; fault and heal are timestamped events, and the heal always runs',
  needs: ['readiness'],
  run: async ({ services: { chainfire }, faults, rec, state }, step) => {
    const first = chainfire.nodes()[0]!;
    const before = await chainfire.leader(first);
    const leader = before.node;
    const survivors = chainfire.nodes().filter((n) => n !== leader);
    const fault = powerCut(leader);
    const t0 = Date.now();
    await faults.invoke(fault, { leaderMemberId: before.memberId, term: before.term });
    const elected = await waitFor(
      `survivors ${survivors.join(', ')} elect a new chainfire leader`,
      { timeoutMs: 60_000, intervalMs: 500 },
      async () => {
        const s = await chainfire.status(survivors[0]!);
        if (s.leader === '0' || s.leader === before.memberId) throw new CheckFailed(`${survivors[0]} still sees leader ${s.leader}`);
        return s;
      },
    );
    const newLeader = await chainfire.nodeOf(elected.leader, survivors[0]!);
    const electedMs = Date.now() - t0;
    const key = `/ultracloud/smoke/${state.runId}/during-fault`;
    const value = `written-while-${leader}-down`;
    await waitFor(`a survivor accepts writes while ${leader} is down`, { timeoutMs: 60_000, intervalMs: 500 }, () =>
      chainfire.put(survivors[0]!, key, value),
    );
    const writableMs = Date.now() - t0;
    rec.event('probe', 'chainfire writable without the old leader', { newLeader: newLeader.name, electedMs, writableMs });
    const t1 = Date.now();
    await faults.heal(fault);
    const rejoinMs = Date.now() - t1;
    await waitFor(`${leader} catches up to the value written while it was down`, { timeoutMs: 60_000, intervalMs: 500 }, async () => {
      const v = await chainfire.get(leader, key);
      if (v !== value) throw new CheckFailed(`${leader} has ${JSON.stringify(v)}`);
    });
    const detail = {
      powerCut: leader.name,
      newLeader: newLeader.name,
      electedMs,
      writableMs,
      rejoinMs,
      caughtUpMs: Date.now() - t1 - rejoinMs,
    };
    rec.event('probe', `${leader} caught up after restart`, detail);
    await step.json('fault.json', detail);
    return `power-cut leader ${leader}: ${newLeader} elected in ${seconds(electedMs)}, writes ok after ${seconds(writableMs)}; ${leader} back in ${seconds(rejoinMs)} and caught up`;
  },
};
