import type { Command } from 'commander';
import { formatBytes } from '../budget/disk-usage.js';
import { applyPrune, budgetStatus, budgetsFromEnv, budgetViolations, prunePlan, renderStatus } from '../budget/work-root-budget.js';
import { EXIT_CHECK_FAILED, EXIT_OK, UsageError } from '../core/errors.js';
import { action, emit, globals } from './context.js';

export function registerBudget(program: Command): void {
  const budget = program
    .command('work-root-budget')
    .description('disk budget of the work root: status, enforce soft budgets, prune old dated proof dirs')
    .addHelpText(
      'after',
      '\nBudgets (GiB) come from ULTRACLOUD_BUDGET_WORK_ROOT_GIB, ..._CLUSTER_STATE_GIB, ..._IMAGE_CACHE_GIB, ..._LANE_GIB.',
    );

  budget
    .command('status')
    .description("sizes of the work root, cluster state, image cache and each lane's dated proof dirs")
    .action(
      action(async (_o: object, cmd: Command) => {
        const g = globals(cmd);
        const s = await budgetStatus(g.workRoot);
        const b = budgetsFromEnv();
        emit(g, { ...s, budgets: b }, renderStatus(s, b));
      }),
    );

  budget
    .command('enforce')
    .description('exit 1 when any soft budget is exceeded')
    .action(
      action(async (_o: object, cmd: Command) => {
        const g = globals(cmd);
        const b = budgetsFromEnv();
        const v = budgetViolations(await budgetStatus(g.workRoot), b);
        emit(
          g,
          { ok: v.length === 0, violations: v, budgets: b },
          v.length === 0
            ? 'work-root-budget: within budget'
            : v.map((x) => `over budget: ${x.what} uses ${formatBytes(x.bytes)} > ${formatBytes(x.budgetBytes)}`).join('\n'),
        );
        return v.length === 0 ? EXIT_OK : EXIT_CHECK_FAILED;
      }),
    );

  budget
    .command('prune-proof-logs')
    .description('keep the KEEP newest dated runs per lane (and whatever `latest` points at); dry run unless --apply')
    .argument('[keep]', 'runs to keep per lane', '2')
    .option('--apply', 'actually delete (default: only list what would go)')
    .action(
      action(async (keepArg: string, opts: { apply?: boolean }, cmd: Command) => {
        const g = globals(cmd);
        const keep = Number(keepArg);
        if (!/^\d+$/.test(keepArg)) throw new UsageError(`KEEP must be a whole number, got "${keepArg}"`);
        const plan = await prunePlan(g.workRoot, keep);
        const done = opts.apply ? await applyPrune(g.workRoot, plan) : [];
        const verb = opts.apply ? 'deleted' : 'would delete';
        const total = formatBytes((opts.apply ? done : plan).reduce((a, c) => a + c.bytes, 0));
        const text = [
          ...(opts.apply ? done : plan).map((c) => `${verb} ${c.lane}/${c.run} (${formatBytes(c.bytes)})`),
          `${plan.length === 0 ? 'nothing to prune' : `${verb} ${(opts.apply ? done : plan).length} dated run(s), ${total}`}${opts.apply ? '' : ' (dry run; add --apply to delete)'}`,
        ].join('\n');
        emit(g, { keep, applied: opts.apply === true, candidates: plan, deleted: done }, text);
      }),
    );
}
