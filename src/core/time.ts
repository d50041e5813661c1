/** UTC timestamp used for run directory names: 20261121T234037Z (sorts by time as text). */
export function runStamp(date = new Date()): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/** Matches the dated proof directories the harness (and the bash seeds) create. */
export const DATED_DIR = /^\d{8}T\d{6}/;

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
