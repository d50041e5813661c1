import { CheckFailed } from '../../core/errors.js';
import { waitFor } from '../../core/retry.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';

/** A value written on one member is read on the others: chainfire (serializable reads) and flaredb (a standby's own server). */
export const replicatedState: Step<ClusterEnv<'chainfire' | 'flaredb'> & { state: RunState }> = {
  name: 'replicated-state',
  proves: 'a unique value written on node01 is read on node02/node03 (chainfire serializable reads, flaredb SQL row)',
  needs: ['readiness'],
  run: async ({ services: { chainfire, flaredb }, state }, step) => {
    const w = { chainfireKey: `/ultracloud/smoke/${state.runId}`, flaredbKey: `smoke-${state.runId}`, value: `v-${state.runId}` };
    const [writer, ...readers] = chainfire.nodes();
    const t0 = Date.now();
    await chainfire.put(writer!, w.chainfireKey, w.value);
    const cf: Record<string, number> = {};
    for (const n of readers)
      await waitFor(`chainfire value written on ${writer} readable on ${n}`, { timeoutMs: 30_000, intervalMs: 250 }, async () => {
        const v = await chainfire.get(n, w.chainfireKey);
        if (v !== w.value) throw new CheckFailed(`${n} has ${JSON.stringify(v)}`);
        cf[n.name] = Date.now() - t0;
      });
    const primary = flaredb.primary();
    const t1 = Date.now();
    await flaredb.put(w.flaredbKey, w.value);
    const fd: Record<string, number> = {};
    for (const n of flaredb.standbys())
      await waitFor(`flaredb row written on ${primary} readable on ${n}`, { timeoutMs: 30_000, intervalMs: 250 }, async () => {
        const v = await flaredb.get(n, w.flaredbKey);
        if (v !== w.value) throw new CheckFailed(`${n} returns ${JSON.stringify(v)}`);
        fd[n.name] = Date.now() - t1;
      });
    state.written = w;
    await step.json('replication.json', { ...w, chainfireConvergedMs: cf, flaredbConvergedMs: fd });
    const fmt = (m: Record<string, number>) =>
      Object.entries(m)
        .map(([n, ms]) => `${n} ${ms} ms`)
        .join(', ');
    return `chainfire ${writer} -> ${fmt(cf)}; flaredb ${primary} -> ${fmt(fd)}`;
  },
};
