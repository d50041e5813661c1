import { type Command, Option } from 'commander';
import { ACCEL_CHOICES, positiveNumber } from '../core/cli-values.js';
import { redactCredentials } from '../core/redact.js';
import { type AnyLane, laneCommand } from '../lanes/lane.js';
import { LANES } from '../lanes/registry.js';
import { runLane } from '../lanes/runner.js';
import type { AccelChoice } from '../vm/accel-probe.js';
import { action, emit, globals, withProfile } from './context.js';

/** Under TCG a wave of three guests needs ~90 s to reach SSH; allow ample slack for loaded CI hosts. */
export const DEFAULT_WAVE_TIMEOUT_S = 600;

interface LaneFlags {
  listSteps?: boolean;
  only?: string[];
  skip?: string[];
  inject?: string[];
  accel?: AccelChoice;
  keep?: boolean;
  keepOnFailure?: boolean;
  coldBoot?: boolean;
  timeout?: number;
  [option: string]: unknown;
}

/** `lanes` and `--list-steps`: the lane as data. */
function describeLane(lane: AnyLane) {
  const words = laneCommand(lane);
  return {
    name: lane.name,
    command: words.join(' '),
    ...(lane.kind === 'cluster' ? { fresh: `fresh-${words.join(' ')}` } : {}),
    kind: lane.kind,
    description: lane.description,
    services: lane.kind === 'cluster' ? lane.services : [],
    steps: lane.steps.map((s) => ({ name: s.name, proves: s.proves, needs: s.needs ?? [] })),
    controls: Object.entries(lane.controls).map(([name, c]) => ({ name, breaks: c.breaks, description: c.description })),
  };
}

function renderLane(d: ReturnType<typeof describeLane>): string {
  return [
    `${d.command}${d.fresh ? ` | ${d.fresh}` : ''}  (${d.kind})  ${d.description}`,
    ...d.steps.map((s, i) => `  ${String(i + 1).padStart(2)}. ${s.name.padEnd(26)} ${s.proves}`),
    ...d.controls.map((c) => `      --inject ${c.name.padEnd(24)} breaks ${c.breaks}: ${c.description}`),
  ].join('\n');
}

function addLaneCommand(parent: Command, lane: AnyLane, word: string, fresh: boolean): void {
  const words = laneCommand(lane);
  const cmd = parent
    .command(word)
    .description(
      fresh
        ? `clean, build, restore the cluster from its snapshot (or boot every node in dependency order and save one), run ${lane.name}, then stop (unless --keep): ${lane.description}`
        : lane.description,
    )
    .option('--list-steps', 'print the steps (and negative controls) and exit')
    .addOption(
      new Option(
        '--only <step...>',
        'run only these steps (and the steps they need; space- or comma-separated); the rest are recorded as skipped by request',
      ).argParser(stepList),
    )
    .addOption(new Option('--skip <step...>', 'leave these steps out (and any step that needs them)').argParser(stepList));
  const controls = Object.keys(lane.controls);
  if (controls.length)
    cmd.addOption(
      new Option('--inject <control...>', 'negative control: break what one step proves, before it runs; healed at the end').choices(
        controls,
      ),
    );
  if (fresh)
    cmd
      .addOption(
        new Option('--accel <mode>', 'accelerator: auto = kvm when the doctor probe passed, else tcg')
          .choices(ACCEL_CHOICES)
          .default('auto'),
      )
      .option('--keep', 'leave the cluster running afterwards')
      .option('--keep-on-failure', 'leave the cluster running only when the lane failed')
      .option('--cold-boot', 'boot for real even when a snapshot of this cluster exists (one is saved if none is)')
      .option('--timeout <seconds>', 'per boot wave', positiveNumber, DEFAULT_WAVE_TIMEOUT_S);
  for (const o of lane.options ?? []) {
    const opt = new Option(o.flags, o.description);
    if (o.choices) opt.choices(o.choices);
    if (o.parse) opt.argParser(o.parse);
    if (o.default !== undefined) opt.default(o.default);
    cmd.addOption(opt);
  }
  cmd.action(
    action(async (flags: LaneFlags, c: Command) => {
      const g = globals(c);
      if (flags.listSteps) {
        const d = describeLane(lane);
        emit(g, d, renderLane(d));
        return;
      }
      const ctx = withProfile(g);
      const { only, skip, inject, accel, keep, keepOnFailure, coldBoot, timeout } = flags;
      const laneOwn = Object.fromEntries((lane.options ?? []).map((o) => optionKey(o.flags)).map((k) => [k, flags[k]]));
      const out = await runLane({
        lane,
        commandLine: `${fresh ? `fresh-${words.join(' ')}` : words.join(' ')}${argvTail(words, fresh)}`,
        profile: ctx.profile,
        paths: ctx.paths,
        workRoot: ctx.workRoot,
        options: laneOwn,
        only,
        skip,
        inject,
        fresh: fresh
          ? {
              accel: accel ?? 'auto',
              waveTimeoutMs: (timeout ?? DEFAULT_WAVE_TIMEOUT_S) * 1000,
              keep: keep === true,
              keepOnFailure: keepOnFailure === true,
              coldBoot: coldBoot === true,
            }
          : undefined,
      });
      emit(ctx, out.data, out.text);
      return out.code;
    }),
  );
}

/** `--console-log <file>` -> consoleLog, as commander names it. */
function optionKey(flags: string): string {
  const long = flags.split(/[ ,]+/).find((f) => f.startsWith('--'))!;
  return long.slice(2).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** The words after the lane's command, as typed: result.json records the whole command. */
function argvTail(words: readonly string[], fresh: boolean): string {
  const argv = process.argv.slice(2);
  const first = fresh ? `fresh-${words[0]}` : words[0]!;
  const at = argv.indexOf(first);
  const tail = at < 0 ? [] : argv.slice(at + words.length).map(redactCredentials);
  return tail.length ? ` ${tail.join(' ')}` : '';
}

/** `--only a b` and `--only a,b` alike. */
const stepList = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), ...value.split(',').filter(Boolean)];

export function registerLanes(program: Command): void {
  const parents = new Map<string, Command>();
  for (const lane of LANES) {
    const words = laneCommand(lane);
    if (words.length === 1) {
      addLaneCommand(program, lane, words[0]!, false);
      if (lane.kind === 'cluster') addLaneCommand(program, lane, `fresh-${words[0]}`, true);
      continue;
    }
    let parent = parents.get(words[0]!);
    if (!parent) {
      parent = program.command(words[0]!).description(
        `${words[0]}: ${LANES.filter((l) => laneCommand(l)[0] === words[0])
          .map((l) => laneCommand(l)[1])
          .join(' | ')}`,
      );
      parents.set(words[0]!, parent);
    }
    addLaneCommand(parent, lane, words[1]!, false);
  }

  program
    .command('lanes')
    .description('every lane with its steps, what each proves, and its negative controls')
    .action(
      action(async (_o: object, c: Command) => {
        const g = globals(c);
        const all = LANES.map(describeLane);
        emit(g, { lanes: all }, all.map(renderLane).join('\n\n'));
      }),
    );
}
