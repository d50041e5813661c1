import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import { readReportInput, renderSummaryMd } from '../core/report.js';
import { DATED_DIR } from '../core/time.js';
import { action, emit, globals } from './context.js';

/** The newest run dir of any lane under the work root (run dirs are named by their UTC start). */
async function newestRun(workRoot: string): Promise<string | null> {
  let best: { dir: string; name: string } | null = null;
  for (const lane of await fs.readdir(workRoot).catch(() => [] as string[])) {
    for (const run of await fs.readdir(path.join(workRoot, lane)).catch(() => [] as string[])) {
      if (!DATED_DIR.test(run) || !existsSync(path.join(workRoot, lane, run, 'result.json'))) continue;
      if (!best || run > best.name) best = { dir: path.join(workRoot, lane, run), name: run };
    }
  }
  return best?.dir ?? null;
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description(
      "print a run's summary (steps, boot, faults and heals, negative controls, evidence); report.html beside it has the timeline",
    )
    .argument('[run-dir]', 'a run dir (default: the newest run of any lane under the work root)')
    .action(
      action(async (dirArg: string | undefined, _o: object, cmd: Command) => {
        const g = globals(cmd);
        const dir = dirArg ? path.resolve(dirArg) : await newestRun(g.workRoot);
        if (!dir) throw new UsageError(`no runs under ${g.workRoot} yet`);
        if (!existsSync(path.join(dir, 'result.json'))) throw new UsageError(`${dir} is not a run dir (no result.json)`);
        const inp = await readReportInput(dir);
        emit(
          g,
          { ...inp.result, dir, report: path.join(dir, 'report.html') },
          `${renderSummaryMd(inp)}\nreport: ${path.join(dir, 'report.html')}`,
        );
      }),
    );
}
