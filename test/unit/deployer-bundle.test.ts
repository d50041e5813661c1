import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { bundleHarnessModule } from '../../src/images/harness-module.js';
import { freePort, until } from '../helpers/control-apis.js';

const TOKEN = 'bundle-admin-token';
const contract = {
  pools: { lab: {} },
  classes: { 'lab-worker': { pool: 'lab', install_plan: { profile: 'lab', disk: '/dev/disk/by-id/virtio-lab-root' } } },
};

/** The deployer the image carries: dist/deployer/main.js bundled into one file, run as systemd would run it. */
describe('the bundled cluster deployer (deployer.mjs, as the image carries it)', () => {
  const dirs: string[] = [];
  const procs: ResultPromise[] = [];
  afterEach(async () => {
    for (const p of procs.splice(0)) p.kill('SIGTERM');
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('is one self-contained file: it serves, keeps a pre-registration across a restart, and the replay is unchanged', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-deployer-bundle-'));
    dirs.push(dir);
    // Outside the repo: it must not need node_modules or dist beside it.
    writeFileSync(path.join(dir, 'deployer.mjs'), await bundleHarnessModule('deployer/main.js'));
    writeFileSync(path.join(dir, 'contract.json'), JSON.stringify(contract));
    mkdirSync(path.join(dir, 'creds'));
    writeFileSync(path.join(dir, 'creds', 'admin.token'), `${TOKEN}\n`);
    mkdirSync(path.join(dir, 'state'));
    const port = await freePort();
    const env = {
      STATE_DIRECTORY: path.join(dir, 'state'),
      CREDENTIALS_DIRECTORY: path.join(dir, 'creds'),
      DEPLOYER_CONTRACT: path.join(dir, 'contract.json'),
      DEPLOYER_PORT: String(port),
      CLUSTER_IP: '127.0.0.1',
    };
    const start = async () => {
      const p = execa(process.execPath, [path.join(dir, 'deployer.mjs')], { env, extendEnv: false, reject: false });
      procs.push(p);
      await until('the bundled deployer', `http://127.0.0.1:${port}/health`);
      return { proc: p }; // not the process itself: an execa process is a thenable, which `await` would wait out
    };
    const admin = (method: string, body?: unknown) =>
      fetch(`http://127.0.0.1:${port}/api/v1/admin/nodes`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: body ? JSON.stringify(body) : undefined,
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));
    const reg = { id: 'node07', machine_id: 'lab-machine-7', class: 'lab-worker' };

    const first = (await start()).proc;
    expect(await admin('POST', reg)).toEqual({ status: 201, body: { id: 'node07', result: 'created' } });
    expect((await admin('POST', { ...reg, id: 'node08', rack: 'r1' })).body.error).toMatch(/rack/);
    first.kill('SIGTERM');
    await first;

    await start();
    const listed = (await admin('GET')).body.nodes as Record<string, { registration: unknown }>;
    expect(Object.keys(listed)).toEqual(['node07']);
    expect(listed.node07!.registration).toEqual(reg);
    expect(await admin('POST', reg)).toEqual({ status: 200, body: { id: 'node07', result: 'unchanged' } });
  }, 60_000);
});
