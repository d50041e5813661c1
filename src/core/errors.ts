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

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
