import type { Logger } from 'pino';
import type { Cluster } from '../cluster/cluster.js';
import type { ClusterPaths } from '../config/paths.js';
import type { LoadedProfile } from '../config/profile.js';
import type { RunRecord, StepContext } from '../core/run-record.js';
import type { Fault, FaultHistory } from '../faults/fault.js';
import type { ServiceClients, ServiceName } from '../services/index.js';

/**
 * A lane is data (kola's register.Test): a name, what it needs, its ordered steps and its
 * negative controls. One runner (runner.ts) does everything around the steps: lock, run record,
 * fresh boot, final heal, node evidence, summary, exit code.
 */

/** What every lane's context starts from, made by the runner. */
export interface LaneEnv {
  rec: RunRecord;
  log: Logger;
  faults: FaultHistory;
  profile: LoadedProfile;
  paths: ClusterPaths;
  workRoot: string;
  /** The lane's own command-line options, parsed by commander. */
  options: Record<string, unknown>;
}

/** Lanes that run on a cluster get it, and clients for the services they declared. */
export interface ClusterEnv<S extends ServiceName = never> extends LaneEnv {
  cluster: Cluster;
  services: Pick<ServiceClients, S>;
}

export interface Step<Ctx> {
  readonly name: string;
  /** What a green step proves (shown by `lanes` and `--list-steps`). */
  readonly proves: string;
  /** Steps that must run before this one in the same run; `--only` keeps them. */
  readonly needs?: readonly string[];
  /** Resolves to the step's one-line detail (a string), or anything else to record none. */
  readonly run: (ctx: Ctx, step: StepContext) => Promise<unknown>;
}

/** A negative control: a fault, and the step it must turn red (with the cause in the error). */
export interface Control<Ctx, S extends string> {
  readonly description: string;
  readonly breaks: S;
  /** Invoked before this step (default: the step it breaks), e.g. a contract edit before the deployer starts. */
  readonly invokeBefore?: S;
  readonly fault: (ctx: Ctx) => Fault | Promise<Fault>;
}

export interface LaneOption {
  flags: string;
  description: string;
  /** commander's argument parser (exit 2 on bad values). */
  parse?: (value: string) => unknown;
  default?: unknown;
  choices?: readonly string[];
}

type Static<T> = Omit<T, 'rec' | 'log' | 'faults'>;

interface LaneBase<Ctx, S extends string> {
  readonly name: string;
  readonly description: string;
  /** The CLI words (default [name]); hardware-smoke has one lane per subcommand. */
  readonly command?: readonly string[];
  /** Each step must accept the lane's context (a step declares only what it uses). */
  readonly steps: readonly (Step<Ctx> & { readonly name: S })[];
  readonly controls: Readonly<Record<string, Control<Ctx, NoInfer<S>>>>;
  readonly options?: readonly LaneOption[];
  /**
   * Check the lane's input before anything changes (no lock, no record): bad input is exit 2 with
   * nothing touched. What it returns reaches `context` as `prepared`.
   */
  readonly prepare?: (env: Static<LaneEnv>) => Promise<unknown>;
  /** Always runs after the final heal (stop chassis, save their consoles); `passed`: every step ran green. */
  readonly teardown?: (ctx: Ctx, passed: boolean) => Promise<void>;
  /** The text printed on stdout, and extra fields for --json, from the finished run. */
  readonly report?: (ctx: Ctx, passed: boolean) => { text?: string; data?: Record<string, unknown> };
}

/** Runs on the running cluster (`<name>`), and from nothing (`fresh-<name>`: clean, build, boot, run, stop). */
export interface ClusterLane<Ctx, S extends string, Svc extends ServiceName> extends LaneBase<Ctx, S> {
  readonly kind: 'cluster';
  /** Services the lane speaks to: a profile without one is exit 2; the context gets a client for each. */
  readonly services: readonly Svc[];
  /** What a green run leaves for the user (serve-vm-webapp's URL): `fresh-` then keeps the cluster running, as with --keep. */
  readonly leavesRunning?: string;
  /** The typed context every step of this lane receives. */
  readonly context: (env: ClusterEnv<NoInfer<Svc>> & { prepared: unknown }) => Ctx | Promise<Ctx>;
}

/** Runs on this host with resources of its own (QEMU chassis, a USB stick, a console log). */
export interface HostLane<Ctx, S extends string> extends LaneBase<Ctx, S> {
  readonly kind: 'host';
  /** The directory whose lock makes this run the only one of its kind. */
  readonly lockDir?: (env: Static<LaneEnv>) => string;
  readonly context: (env: LaneEnv & { prepared: unknown }) => Ctx | Promise<Ctx>;
}

/**
 * Typed definitions, `clusterLane<Ctx>()({...})`: the context type is stated once; step names become
 * a union that controls' `breaks` are checked against, and services a union the context is typed by.
 */
export const clusterLane =
  <Ctx>() =>
  <const S extends string, const Svc extends ServiceName>(lane: ClusterLane<Ctx, S, Svc>): ClusterLane<Ctx, S, Svc> =>
    lane;

export const hostLane =
  <Ctx>() =>
  <const S extends string>(lane: HostLane<Ctx, S>): HostLane<Ctx, S> =>
    lane;

/** What the registry holds: lanes of any context (the runner only passes contexts through). */
// biome-ignore lint/suspicious/noExplicitAny: the registry is heterogeneous by design; each lane is typed where it is defined.
export type AnyLane = ClusterLane<any, string, ServiceName> | HostLane<any, string>;

export const laneCommand = (lane: AnyLane): readonly string[] => lane.command ?? [lane.name];
