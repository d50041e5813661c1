/** Exit codes the CLI promises: 0 success, 1 a check failed, 2 bad usage or bad input. */
export const EXIT_OK = 0;
export const EXIT_CHECK_FAILED = 1;
export const EXIT_USAGE = 2;

/** Bad input from the user (profile, flags, environment): nothing was changed. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A check ran and did not hold: the thing under test is broken. */
export class CheckFailed extends Error {
  override name = 'CheckFailed';
}

/** Thrown by a step that has nothing to do in this run (an optional input was not given): recorded as skipped by request. */
export class StepSkipped extends Error {
  override name = 'StepSkipped';
}

/** A host tool the command needs is missing; says which Debian package provides it. */
export class MissingTool extends UsageError {
  constructor(
    readonly tool: string,
    readonly debianPackage: string,
  ) {
    super(`${tool} not found on PATH; install it with: apt-get install ${debianPackage}  (or run: ultracloud doctor --fix)`);
  }
}

export function exitCodeFor(err: unknown): number {
  return err instanceof UsageError ? EXIT_USAGE : EXIT_CHECK_FAILED;
}

/** A full disk or quota, from any write: the path names which filesystem to free. */
export function isDiskFull(err: unknown): err is NodeJS.ErrnoException {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Name the file a write failed on (Node leaves `path` unset when the write, not the open, fails). */
export function withPath<E>(err: E, file: string): E {
  if (err && typeof err === 'object' && !('path' in err && (err as { path?: string }).path)) Object.assign(err, { path: file });
  return err;
}

export function errorMessage(err: unknown): string {
  if (isDiskFull(err))
    return `no space left on the device holding ${err.path ?? '(a path it did not name)'}: free some (ultracloud work-root-budget status) and run again`;
  return err instanceof Error ? err.message : String(err);
}
