import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Deployer } from '../../src/deployer/server.js';
import { DeployerStore } from '../../src/deployer/store.js';

const contract = {
  pools: { control: {} },
  classes: {
    'control-plane': { pool: 'control', install_plan: { profile: 'control-plane', disk: '/dev/disk/by-id/virtio-uc-control-root' } },
  },
};
const node = {
  id: 'bm-1',
  machine_id: 'SER-1',
  class: 'control-plane',
  desired_system: { target_system: 'cp-v1', health_check: "grep -q '^ok' /tmp/x", health_timeout_s: 20 },
};

describe('lab deployer (real HTTP on loopback)', () => {
  const open: Deployer[] = [];
  afterEach(async () => {
    for (const d of open.splice(0)) await d.close();
  });
  const start = async (dir: string, port = 0) => {
    const artifacts = path.join(dir, 'artifacts');
    const d = new Deployer({
      contract,
      store: new DeployerStore(path.join(dir, 'state.json')),
      artifacts,
      publicUrl: (p) => `http://10.0.2.2:${p}`,
      log: pino({ level: 'silent' }),
    });
    await d.listen(port);
    open.push(d);
    return d;
  };
  const call = async (d: Deployer, method: string, route: string, body?: unknown, accept = 'application/json') => {
    const r = await fetch(`http://127.0.0.1:${d.port}${route}`, {
      method,
      headers: { 'content-type': 'application/json', accept },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, text: await r.text() };
  };

  it('pre-registers idempotently, answers phone-home with the class plan, and keeps everything across a restart', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-deployer-'));
    const d = await start(dir);
    expect((await call(d, 'POST', '/api/v1/admin/nodes', node)).status).toBe(201);
    expect(JSON.parse((await call(d, 'POST', '/api/v1/admin/nodes', node)).text)).toEqual({ id: 'bm-1', result: 'unchanged' });

    const plan = await call(d, 'POST', '/api/v1/phone-home', { machine_id: 'SER-1', mac: '52:54:00:00:00:01' });
    expect(JSON.parse(plan.text)).toEqual({
      node_id: 'bm-1',
      install_plan: { profile: 'control-plane', disk: '/dev/disk/by-id/virtio-uc-control-root' },
      bundle_url: `http://10.0.2.2:${d.port}/api/v1/bundles/control-plane.tar.gz`,
    });
    // The busybox installer asks for shell lines; quotes in values survive the round trip.
    const env = await call(d, 'GET', '/api/v1/nodes/bm-1/desired-system', undefined, 'text/plain');
    expect(env.text).toContain(`HEALTH_CHECK='grep -q '\\''^ok'\\'' /tmp/x'`);
    await call(d, 'POST', '/api/v1/nodes/bm-1/progress', { stage: 'install-done' });

    const port = d.port;
    await d.close();
    open.pop();
    const again = await start(dir, port);
    const nodes = JSON.parse((await call(again, 'GET', '/api/v1/admin/nodes')).text).nodes;
    expect(nodes['bm-1'].registration).toEqual(node);
    expect(nodes['bm-1'].phoneHomes).toHaveLength(1);
    expect(nodes['bm-1'].progress.map((p: { stage: string }) => p.stage)).toEqual(['install-done']);
  });

  it('refuses unknown machines, unknown classes and malformed bodies with the reason', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-deployer-'));
    const d = await start(dir);
    const unknown = await call(d, 'POST', '/api/v1/phone-home', { machine_id: 'nobody' });
    expect(unknown.status).toBe(404);
    expect(unknown.text).toContain('machine \\"nobody\\" is not pre-registered');
    const badClass = await call(d, 'POST', '/api/v1/admin/nodes', { ...node, class: 'gpu' });
    expect(badClass.status).toBe(422);
    const bad = await call(d, 'POST', '/api/v1/admin/nodes', { id: 'x' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('machine_id');
    expect((await call(d, 'GET', '/api/v1/bundles/missing.tar.gz')).status).toBe(404);
  });
});

describe('deployer store', () => {
  it('keeps every one of many concurrent registrations on disk (no older snapshot lands last)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-store-'));
    const store = new DeployerStore(path.join(dir, 'state.json'));
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.register({ ...node, id: `bm-${i}`, machine_id: `SER-${i}` })));
    expect(Object.keys(new DeployerStore(path.join(dir, 'state.json')).nodes())).toHaveLength(20);
  });
});
