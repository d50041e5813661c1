import { describe, expect, it } from 'vitest';
import { judgeUnits, parseShow, type UnitsSnapshot, unitsWithJobs } from '../../src/cluster/readiness.js';
import { StopWaiting } from '../../src/core/retry.js';

const unit = (active: string, o: Partial<UnitsSnapshot['units'][string]> = {}) => ({
  load: 'loaded',
  active,
  sub: '',
  restarts: 0,
  job: false,
  ...o,
});
const snap = (system: string, units: UnitsSnapshot['units']): UnitsSnapshot => ({ system, units });

describe('readiness judgement (kola rules)', () => {
  it('is ready when the system runs and every unit is active', () => {
    expect(judgeUnits('n1', snap('running', { 'a.service': unit('active') }))).toBe('ready');
  });

  it('keeps waiting while booting or while a start job is queued', () => {
    expect(judgeUnits('n1', snap('starting', { 'a.service': unit('inactive') }))).toMatch(
      /system starting; not yet active: a\.service=inactive/,
    );
    expect(judgeUnits('n1', snap('running', { 'a.service': unit('activating', { job: true }) }))).toMatch(/not yet active/);
    expect(judgeUnits('n1', snap('running', { 'a.service': unit('inactive', { job: true }) }))).toMatch(/not yet active/);
  });

  it('stops waiting at once on what cannot get better, naming the node and unit', () => {
    const stop = (s: UnitsSnapshot) => () => judgeUnits('node02', s);
    expect(stop(snap('running', { 'iam.service': unit('inactive', { sub: 'dead' }) }))).toThrow(StopWaiting);
    expect(stop(snap('running', { 'iam.service': unit('inactive', { sub: 'dead' }) }))).toThrow(
      'node02: unit(s) stopped with no start job queued: iam.service is inactive (dead)',
    );
    expect(stop(snap('starting', { 'iam.service': unit('inactive', { load: 'masked' }) }))).toThrow(
      'node02: expected unit(s) cannot start: iam.service is masked',
    );
    expect(stop(snap('starting', { 'x.service': unit('failed') }))).toThrow('node02: unit(s) failed: x.service');
    expect(stop(snap('starting', { 'x.service': unit('activating', { restarts: 3 }) }))).toThrow(
      'restart-looping: x.service restarted 3 times',
    );
    expect(stop(snap('degraded', { 'x.service': unit('active') }))).toThrow('node02: system is degraded');
  });

  it('parses systemctl show blocks and list-jobs lines', () => {
    const out =
      'Id=a.service\nLoadState=loaded\nActiveState=active\nNRestarts=0\n\nId=b.service\nLoadState=masked\nActiveState=inactive\nNRestarts=31\n';
    expect(parseShow(out)).toEqual([
      { Id: 'a.service', LoadState: 'loaded', ActiveState: 'active', NRestarts: '0' },
      { Id: 'b.service', LoadState: 'masked', ActiveState: 'inactive', NRestarts: '31' },
    ]);
    expect([...unitsWithJobs('123 chainfire.service start running\n124 iam.service start waiting\n')]).toEqual([
      'chainfire.service',
      'iam.service',
    ]);
  });
});
