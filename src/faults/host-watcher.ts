import type { Fault } from './fault.js';

/**
 * A fault that is a watcher on the host: from invoke to heal, `pass` runs every `everyMs` (one at
 * a time; a pass that throws is tried again next time), breaking what it finds as it appears.
 */
export function hostWatcher(f: Omit<Fault, 'invoke' | 'heal'> & { everyMs: number; pass: () => Promise<void> }): Fault {
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    timer = setTimeout(
      () =>
        void f
          .pass()
          .catch(() => {})
          .finally(() => timer && schedule()),
      f.everyMs,
    );
  };
  return {
    kind: f.kind,
    name: f.name,
    targets: f.targets,
    invoke: async () => schedule(),
    heal: async () => {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
