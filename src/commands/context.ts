import type { Command } from 'commander';
import { loadProfile } from '../config/load-profile.js';
import { type ClusterPaths, clusterPaths, resolveWorkRoot } from '../config/paths.js';
import type { LoadedProfile } from '../config/profile.js';
import { EXIT_OK, errorMessage, exitCodeFor } from '../core/errors.js';
import { configureConsoleLog, type LogLevel, log } from '../core/log.js';
import { runCleanups } from '../core/shutdown.js';
import { SERVICE_PARAMS } from '../services/index.js';

/** The global options every command sees, resolved once. */
export interface Globals {
  profileRef: string;
  workRoot: string;
  json: boolean;
  logLevel: LogLevel;
}

export function globals(cmd: Command): Globals {
  const o = cmd.optsWithGlobals<{ profile?: string; workRoot?: string; json?: boolean; logLevel: LogLevel }>();
  return {
    profileRef: o.profile ?? process.env.ULTRACLOUD_PROFILE ?? 'lab',
    workRoot: resolveWorkRoot(o.workRoot),
    json: o.json === true,
    logLevel: o.logLevel,
  };
}

export interface ProfileContext extends Globals {
  profile: LoadedProfile;
  paths: ClusterPaths;
}

export function withProfile(g: Globals): ProfileContext {
  const profile = loadProfile(g.profileRef, SERVICE_PARAMS);
  return { ...g, profile, paths: clusterPaths(g.workRoot, profile.name) };
}

/** Machine output goes to stdout as JSON with --json, else the human text. */
export function emit(g: Globals, data: unknown, text: string): void {
  process.stdout.write(g.json ? `${JSON.stringify(data, null, 2)}\n` : `${text}\n`);
}

/**
 * Wrap an action: configure logging, map errors to exit codes (2 usage, 1 check failed),
 * and always unwind what the command started.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | undefined>) {
  return async (...args: A): Promise<void> => {
    const cmd = args[args.length - 1] as Command;
    configureConsoleLog(cmd.optsWithGlobals<{ logLevel: LogLevel }>().logLevel);
    let code: number = EXIT_OK;
    try {
      code = (await fn(...args)) ?? EXIT_OK;
    } catch (err) {
      code = exitCodeFor(err);
      log.error(errorMessage(err));
      if (cmd.optsWithGlobals<{ json?: boolean }>().json)
        process.stdout.write(`${JSON.stringify({ ok: false, error: errorMessage(err), exitCode: code })}\n`);
      if (process.env.ULTRACLOUD_DEBUG) log.error({ err }, 'stack');
    } finally {
      await runCleanups('exit', (m) => log.warn(m));
    }
    process.exitCode = code;
    exitIfHeldOpen(code);
  };
}

/** Grace for sockets and timers to close by themselves after the command has unwound. */
const HELD_OPEN_GRACE_MS = 10_000;

/**
 * Everything the command started has been unwound; a handle left open by mistake (a socket, a
 * timer) must not keep the CLI alive until a caller's timeout kills it: say what it is and exit.
 */
function exitIfHeldOpen(code: number): void {
  setTimeout(() => {
    log.warn(
      `still running ${HELD_OPEN_GRACE_MS / 1000} s after finishing, held open by: ${process.getActiveResourcesInfo().join(', ')}; exiting`,
    );
    process.exit(code);
  }, HELD_OPEN_GRACE_MS).unref();
}
