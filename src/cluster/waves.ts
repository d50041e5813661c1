import { UsageError } from '../core/errors.js';

/**
 * Boot order as waves (Kahn levels): a node boots once everything it depends on is ready;
 * nodes of one wave boot concurrently. Dependencies outside `selected` are ignored
 * (`start --nodes` may boot a subset whose dependencies already run).
 */
export function bootWaves(nodes: { name: string; dependsOn: string[] }[], selected?: string[]): string[][] {
  const pick = new Set(selected ?? nodes.map((n) => n.name));
  const unknown = [...pick].filter((n) => !nodes.some((x) => x.name === n));
  if (unknown.length) throw new UsageError(`unknown node(s): ${unknown.join(', ')} (profile has: ${nodes.map((n) => n.name).join(', ')})`);
  const remaining = new Map(nodes.filter((n) => pick.has(n.name)).map((n) => [n.name, new Set(n.dependsOn.filter((d) => pick.has(d)))]));
  const waves: string[][] = [];
  while (remaining.size > 0) {
    const ready = [...remaining].filter(([, deps]) => deps.size === 0).map(([n]) => n);
    if (ready.length === 0) throw new UsageError(`dependency cycle among: ${[...remaining.keys()].join(', ')}`);
    waves.push(ready);
    for (const n of ready) remaining.delete(n);
    for (const deps of remaining.values()) for (const n of ready) deps.delete(n);
  }
  return waves;
}
