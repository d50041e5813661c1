import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { LIB } from '../helpers/control-apis.js';

/** fleet-scheduler's placement rule as it ships (pure): drain, failover, replica restoration, no needless moves. */
const require = createRequire(import.meta.url);
type Placement = Record<string, string | null>;
const { place } = require(`${LIB}/fleet-placement.js`) as {
  place: (s: { name: string; replicas: number }[], n: { name: string; alive: boolean; drained: boolean }[], c: Placement) => Placement;
};

const services = [
  { name: 'single', replicas: 1 },
  { name: 'pair', replicas: 2 },
];
const up = (...names: string[]) => names.map((name) => ({ name, alive: true, drained: false }));

describe('fleet placement', () => {
  it('spreads replicas of a service over workers, one each, and the least loaded worker first', () => {
    expect(place(services, up('node04', 'node05'), {})).toEqual({ 'pair/0': 'node04', 'pair/1': 'node05', 'single/0': 'node04' });
  });

  it('a drained worker loses its instances: the single moves, the pair keeps one replica and one is pending', () => {
    const now = { 'pair/0': 'node04', 'pair/1': 'node05', 'single/0': 'node04' };
    const nodes = [
      { name: 'node04', alive: true, drained: true },
      { name: 'node05', alive: true, drained: false },
    ];
    expect(place(services, nodes, now)).toEqual({ 'pair/0': null, 'pair/1': 'node05', 'single/0': 'node05' });
  });

  it('when the worker is back, the pending replica is restored there and nothing else moves', () => {
    const now = { 'pair/0': null, 'pair/1': 'node05', 'single/0': 'node05' };
    expect(place(services, up('node04', 'node05'), now)).toEqual({ 'pair/0': 'node04', 'pair/1': 'node05', 'single/0': 'node05' });
  });

  it('a worker whose heartbeat lease expired fails over like a drain; with no worker left everything is pending', () => {
    const now = { 'pair/0': 'node04', 'pair/1': 'node05', 'single/0': 'node05' };
    const lost = [
      { name: 'node04', alive: true, drained: false },
      { name: 'node05', alive: false, drained: false },
    ];
    expect(place(services, lost, now)).toEqual({ 'pair/0': 'node04', 'pair/1': null, 'single/0': 'node04' });
    expect(place(services, [], now)).toEqual({ 'pair/0': null, 'pair/1': null, 'single/0': null });
  });

  it('two replicas of one service never share a worker, even when the current state says so', () => {
    const now = { 'pair/0': 'node05', 'pair/1': 'node05' };
    expect(place([{ name: 'pair', replicas: 2 }], up('node04', 'node05'), now)).toEqual({ 'pair/0': 'node05', 'pair/1': 'node04' });
  });
});
