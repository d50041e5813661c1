import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedfishClient, redfishConfigFromEnv } from '../../src/baremetal/redfish.js';
import { cli, REPO } from '../helpers/cli.js';
import { type FakeBmc, startFakeBmc } from '../helpers/redfish-server.js';

const PASSWORD = 'hunter2-do-not-log';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe('Redfish client against a loopback Redfish-shaped BMC', () => {
  let bmc: FakeBmc;
  const lines: string[] = [];
  const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(l) });

  beforeAll(async () => {
    bmc = await startFakeBmc('admin', PASSWORD);
  }, 30_000);
  afterAll(() => bmc.close());

  it('inserts the ISO on the CD slot, sets a one-time CD boot, and powers the machine on', async () => {
    const c = new RedfishClient({ url: bmc.url, username: 'admin', password: PASSWORD, insecure: true }, log);
    const r = await c.bootFromVirtualMedia('http://10.0.0.5/ultracloud-installer.iso');
    expect(r).toEqual({ system: '/redfish/v1/Systems/1', slot: '/redfish/v1/Managers/bmc/VirtualMedia/CD', reset: 'On' });
    expect(bmc.state).toMatchObject({
      power: 'On',
      media: { Image: 'http://10.0.0.5/ultracloud-installer.iso', Inserted: true },
      boot: { BootSourceOverrideTarget: 'Cd', BootSourceOverrideEnabled: 'Once' },
    });
    const writes = bmc.requests.filter((q) => q.method !== 'GET').map((q) => `${q.method} ${q.path}`);
    expect(writes).toEqual([
      'POST /redfish/v1/Managers/bmc/VirtualMedia/CD/Actions/VirtualMedia.InsertMedia',
      'PATCH /redfish/v1/Systems/1',
      'POST /redfish/v1/Systems/1/Actions/ComputerSystem.Reset',
    ]);
    // A second run on a running machine with media inserted: eject first, then force-restart.
    await c.bootFromVirtualMedia('http://10.0.0.5/second.iso');
    expect(
      bmc.requests
        .filter((q) => q.method !== 'GET')
        .slice(3)
        .map((q) => q.path.split('/').pop()),
    ).toEqual(['VirtualMedia.EjectMedia', 'VirtualMedia.InsertMedia', '1', 'ComputerSystem.Reset']);
    expect(bmc.requests.at(-1)!.body).toEqual({ ResetType: 'ForceRestart' });
    expect(lines.join('')).not.toContain(PASSWORD);
  });

  it('refuses a self-signed certificate unless told to accept it', async () => {
    const c = new RedfishClient({ url: bmc.url, username: 'admin', password: PASSWORD, insecure: false }, log);
    await expect(c.bootFromVirtualMedia('http://x/iso')).rejects.toThrow(/self-signed BMC certificate: set ULTRACLOUD_REDFISH_INSECURE=1/);
  });

  it('names refused credentials without ever printing the password', async () => {
    const c = new RedfishClient({ url: bmc.url, username: 'admin', password: 'wrong-secret', insecure: true }, log);
    const err = await c.bootFromVirtualMedia('http://x/iso').catch((e: Error) => e);
    expect(String(err)).toMatch(/GET \/redfish\/v1\/Systems -> 401 \(credentials refused.*\): The credentials were not accepted/);
    expect(String(err)).not.toContain('wrong-secret');
  });

  it('takes its settings from the environment and says which are missing', () => {
    expect(() => redfishConfigFromEnv({ ULTRACLOUD_REDFISH_URL: 'https://bmc' })).toThrow(
      'redfish transport needs ULTRACLOUD_REDFISH_USERNAME, ULTRACLOUD_REDFISH_PASSWORD',
    );
    expect(
      redfishConfigFromEnv({
        ULTRACLOUD_REDFISH_URL: 'https://bmc/',
        ULTRACLOUD_REDFISH_USERNAME: 'u',
        ULTRACLOUD_REDFISH_PASSWORD: 'p',
        ULTRACLOUD_REDFISH_INSECURE: '1',
      }),
    ).toEqual({ url: 'https://bmc', username: 'u', password: 'p', insecure: true });
  });

  it('hardware-smoke run --transport redfish drives the BMC; no evidence file holds the password', async () => {
    // A machine that is off with nothing inserted: what the run leaves is then its doing.
    Object.assign(bmc.state, {
      power: 'Off',
      media: { Image: null, Inserted: false },
      boot: { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' },
    });
    const work = path.join(REPO, 'work', 'unit-hardware-smoke');
    const env = {
      ULTRACLOUD_REDFISH_URL: bmc.url,
      ULTRACLOUD_REDFISH_USERNAME: 'admin',
      ULTRACLOUD_REDFISH_PASSWORD: PASSWORD,
      ULTRACLOUD_REDFISH_INSECURE: '1',
    };
    const r = await cli(
      [
        '--work-root',
        work,
        '--json',
        'hardware-smoke',
        'run',
        '--transport',
        'redfish',
        '--iso-url',
        'http://10.0.0.5/uc.iso',
        '--deployer-url',
        'http://10.0.0.5:8088',
      ],
      { env, timeout: 60_000 },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.steps.map((s: { name: string; status: string }) => `${s.name}:${s.status}`)).toEqual([
      'installer-image:passed',
      'handoff:passed',
      'transport:passed',
      'markers:skipped', // no --console-log to follow
    ]);
    expect(readFileSync(path.join(out.dir, 'kernel-params.txt'), 'utf8')).toContain(
      'ultracloud.installer=1 ultracloud.deployer=http://10.0.0.5:8088',
    );
    const calls = JSON.parse(readFileSync(path.join(out.dir, 'redfish-calls.json'), 'utf8')) as {
      method: string;
      path: string;
      status: number;
    }[];
    expect(calls.map((c) => `${c.method} ${c.path.split('/').slice(-2).join('/')}`)).toEqual(
      expect.arrayContaining(['POST Actions/VirtualMedia.InsertMedia', 'PATCH Systems/1', 'POST Actions/ComputerSystem.Reset']),
    );
    expect(calls.filter((c) => c.status >= 300)).toEqual([]);
    // What the machine was left with: the ISO in the CD slot, a one-time CD boot, power on.
    expect(bmc.state.media).toEqual({ Image: 'http://10.0.0.5/uc.iso', Inserted: true });
    expect(bmc.state.boot).toMatchObject({ BootSourceOverrideTarget: 'Cd', BootSourceOverrideEnabled: 'Once' });
    expect(bmc.state.power).toBe('On');
    for (const f of filesUnder(out.dir)) expect(readFileSync(f, 'utf8'), f).not.toContain(PASSWORD);
    expect(r.stderr).not.toContain(PASSWORD);
  }, 90_000);
});
