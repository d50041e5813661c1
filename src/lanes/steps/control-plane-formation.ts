import { CheckFailed } from '../../core/errors.js';
import { StopWaiting, waitFor } from '../../core/retry.js';
import type { ClusterEnv, Step } from '../lane.js';

/** The replicated stores formed: chainfire's members agree on one leader; flaredb's primary streams to every standby. */
export const controlPlaneFormation: Step<ClusterEnv<'chainfire' | 'flaredb'>> = {
  name: 'control-plane-formation',
  proves: "chainfire has its members agreeing on one leader; flaredb's primary streams to every standby, each in recovery",
  needs: ['readiness'],
  run: async ({ services: { chainfire, flaredb } }, step) => {
    const cf = chainfire.nodes();
    const members = await chainfire.members(cf[0]!);
    const statuses = await waitFor('chainfire members agree on one leader', { timeoutMs: 30_000 }, async () => {
      const st = await Promise.all(cf.map(async (n) => ({ node: n.name, ...(await chainfire.status(n)) })));
      const leaders = new Set(st.map((s) => s.leader));
      if (leaders.size !== 1 || st[0]!.leader === '0')
        throw new CheckFailed(`members see different leaders: ${st.map((s) => `${s.node}->${s.leader}`).join(', ')}`);
      return st;
    });
    await step.json('chainfire-members.json', { members, statuses });
    const want = chainfire.expectedMembers();
    if (members.length !== want)
      throw new CheckFailed(`chainfire has ${members.length} members (${members.map((m) => m.name).join(', ')}), expected ${want}`);
    const leader = await chainfire.nodeOf(statuses[0]!.leader, cf[0]!);

    const primary = flaredb.primary();
    const standbys = flaredb.standbys();
    const wantStandbys = flaredb.expectedStandbys();
    const repl = await waitFor(`flaredb primary ${primary} streams to ${wantStandbys} standbys`, { timeoutMs: 30_000 }, async () => {
      const rows = await flaredb.replication();
      const streaming = rows.filter((r) => r.state === 'streaming');
      if (streaming.length !== wantStandbys) {
        const missing = standbys.filter((s) => !streaming.some((r) => r.application_name === s.name));
        // A standby whose server is down will not start streaming by itself: say so now, not at the deadline.
        const down = (
          await Promise.all(missing.map(async (s) => [s.name, (await s.unitStates([flaredb.unit]))[flaredb.unit]] as const))
        ).filter(([, st]) => st === 'inactive' || st === 'failed');
        if (down.length)
          throw new StopWaiting(
            `flaredb primary ${primary} is not streaming to ${down.map(([n, st]) => `${n} (${flaredb.unit} is ${st} there)`).join(', ')}; not streaming: ${missing.join(', ')}`,
          );
        throw new CheckFailed(
          `primary ${primary} streams to ${streaming.length} standby(s) [${streaming.map((r) => r.application_name).join(', ')}], expected ${wantStandbys}; not streaming: ${missing.join(', ') || '?'}`,
        );
      }
      return rows;
    });
    const recovery = await Promise.all(standbys.map(async (s) => ({ node: s.name, inRecovery: await flaredb.inRecovery(s) })));
    await step.json('flaredb-replication.json', { primary: primary.name, pg_stat_replication: repl, recovery });
    const notStandby = recovery.filter((r) => !r.inRecovery);
    if (notStandby.length) throw new CheckFailed(`flaredb: ${notStandby.map((r) => r.node).join(', ')} not in recovery (not a standby)`);
    return `chainfire: ${members.length} members, leader ${leader} (term ${statuses[0]!.raftTerm}); flaredb: ${primary} streaming to ${standbys.join(', ')}`;
  },
};
