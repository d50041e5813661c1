/** UTC timestamp used for run directory names: 20261121T234037Z (sorts by time as text). */
export function runStamp(date = new Date()): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

/** Matches the dated proof directories the harness (and the bash seeds) create. */
export const DATED_DIR = /^\d{8}T\d{6}/;

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Race a promise against a timer that is always cleared (a stray timer keeps the CLI alive). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
