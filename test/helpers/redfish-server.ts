import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A small Redfish-shaped BMC on 127.0.0.1 (HTTPS, self-signed, Basic auth): one system, one
 * manager with a CD virtual-media slot, and the actions an install needs. Records every request.
 */
export interface FakeBmc {
  url: string;
  requests: { method: string; path: string; body: unknown; authorized: boolean }[];
  state: { power: 'On' | 'Off'; media: { Image: string | null; Inserted: boolean }; boot: Record<string, unknown> };
  close(): Promise<void>;
}

export async function startFakeBmc(user: string, password: string): Promise<FakeBmc> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-bmc-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=127.0.0.1',
      '-days',
      '1',
      '-keyout',
      `${dir}/key.pem`,
      '-out',
      `${dir}/cert.pem`,
    ],
    { stdio: 'ignore' },
  );
  const state: FakeBmc['state'] = {
    power: 'Off',
    media: { Image: null, Inserted: false },
    boot: { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' },
  };
  const requests: FakeBmc['requests'] = [];
  const expected = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const server = https.createServer({ key: readFileSync(`${dir}/key.pem`), cert: readFileSync(`${dir}/cert.pem`) }, (req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const p = req.url ?? '/';
      const body = raw ? JSON.parse(raw) : undefined;
      const authorized = req.headers.authorization === expected;
      requests.push({ method: req.method ?? '', path: p, body, authorized });
      const send = (status: number, data: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(data));
      if (!authorized)
        return send(401, {
          error: { message: 'Unauthorized', '@Message.ExtendedInfo': [{ Message: 'The credentials were not accepted.' }] },
        });
      const routes: Record<string, () => void> = {
        'GET /redfish/v1/Systems': () => send(200, { Members: [{ '@odata.id': '/redfish/v1/Systems/1' }] }),
        'GET /redfish/v1/Systems/1': () => send(200, { Id: '1', PowerState: state.power, Boot: state.boot }),
        'PATCH /redfish/v1/Systems/1': () => {
          state.boot = { ...state.boot, ...(body as { Boot: Record<string, unknown> }).Boot };
          send(200, {});
        },
        'POST /redfish/v1/Systems/1/Actions/ComputerSystem.Reset': () => {
          const t = (body as { ResetType: string }).ResetType;
          if (!['On', 'ForceRestart', 'ForceOff'].includes(t)) return send(400, { error: { message: `bad ResetType ${t}` } });
          state.power = t === 'ForceOff' ? 'Off' : 'On';
          res.writeHead(204).end();
        },
        'GET /redfish/v1/Managers': () => send(200, { Members: [{ '@odata.id': '/redfish/v1/Managers/bmc' }] }),
        'GET /redfish/v1/Managers/bmc/VirtualMedia': () =>
          send(200, {
            Members: [
              { '@odata.id': '/redfish/v1/Managers/bmc/VirtualMedia/Floppy' },
              { '@odata.id': '/redfish/v1/Managers/bmc/VirtualMedia/CD' },
            ],
          }),
        'GET /redfish/v1/Managers/bmc/VirtualMedia/Floppy': () => send(200, { MediaTypes: ['Floppy', 'USBStick'], Inserted: false }),
        'GET /redfish/v1/Managers/bmc/VirtualMedia/CD': () => send(200, { MediaTypes: ['CD', 'DVD'], ...state.media }),
        'POST /redfish/v1/Managers/bmc/VirtualMedia/CD/Actions/VirtualMedia.InsertMedia': () => {
          state.media = { Image: (body as { Image: string }).Image, Inserted: true };
          res.writeHead(204).end();
        },
        'POST /redfish/v1/Managers/bmc/VirtualMedia/CD/Actions/VirtualMedia.EjectMedia': () => {
          state.media = { Image: null, Inserted: false };
          res.writeHead(204).end();
        },
      };
      const r = routes[`${req.method} ${p}`];
      if (r) r();
      else send(404, { error: { message: `no resource ${p}` } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    state,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
