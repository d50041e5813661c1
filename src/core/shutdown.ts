import { errorMessage } from './errors.js';

/**
 * One place that knows how to unwind what this process started. Handlers run LIFO,
 * once, on normal exit paths (runCleanups) and on SIGINT/SIGTERM.
 */
type Cleanup = { name: string; fn: (reason: string) => Promise<void> | void };
const cleanups: Cleanup[] = [];
let installed = false;
let unwinding: Promise<void> | undefined;

export function onCleanup(name: string, fn: Cleanup['fn']): () => void {
  const entry = { name, fn };
  cleanups.push(entry);
  installSignalHandlers();
  return () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

export function runCleanups(reason: string, log: (msg: string) => void = () => {}): Promise<void> {
  unwinding ??= (async () => {
    while (cleanups.length > 0) {
      const c = cleanups.pop()!;
      try {
        await c.fn(reason);
      } catch (err) {
        log(`cleanup ${c.name} failed: ${errorMessage(err)}`);
      }
    }
  })();
  return unwinding;
}

function installSignalHandlers(): void {
  if (installed) return;
  installed = true;
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.on(sig, () => {
      if (unwinding) {
        // Cleanup is running (wait for it) or already done while a stray handle keeps us alive: exit either way.
        process.stderr.write(`\n${sig}: finishing cleanup, then exiting\n`);
        void unwinding.finally(() => process.exit(code));
        return;
      }
      if (cleanups.length > 0) process.stderr.write(`\n${sig}: stopping what this run started...\n`);
      void runCleanups(sig, (m) => process.stderr.write(`${m}\n`)).finally(() => process.exit(code));
    });
  }
  // A bug must not leave guests behind either: unwind, then die loudly.
  for (const ev of ['uncaughtException', 'unhandledRejection'] as const) {
    process.on(ev, (err: unknown) => {
      process.stderr.write(`\nultracloud: internal error (${ev}): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      void runCleanups(ev, (m) => process.stderr.write(`${m}\n`)).finally(() => process.exit(70));
    });
  }
}
