import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import { CheckFailed, UsageError } from '../core/errors.js';

/**
 * The few Redfish calls a bare-metal install needs: insert the installer as virtual media,
 * a one-time boot override to it, power on (or force-restart). Credentials come from the
 * environment and never reach a log line, an error message or an evidence file.
 */
export interface RedfishConfig {
  url: string;
  username: string;
  password: string;
  /** BMCs ship self-signed certificates; opt in explicitly. */
  insecure: boolean;
}

export function redfishConfigFromEnv(env: NodeJS.ProcessEnv = process.env, urlFlag?: string): RedfishConfig {
  const url = urlFlag ?? env.ULTRACLOUD_REDFISH_URL;
  const username = env.ULTRACLOUD_REDFISH_USERNAME;
  const password = env.ULTRACLOUD_REDFISH_PASSWORD;
  const missing = [
    !url && 'ULTRACLOUD_REDFISH_URL (or --bmc)',
    !username && 'ULTRACLOUD_REDFISH_USERNAME',
    !password && 'ULTRACLOUD_REDFISH_PASSWORD',
  ].filter(Boolean);
  if (missing.length) throw new UsageError(`redfish transport needs ${missing.join(', ')}`);
  if (!/^https?:\/\//.test(url!)) throw new UsageError(`redfish URL must be http(s)://...: ${url}`);
  return { url: url!.replace(/\/+$/, ''), username: username!, password: password!, insecure: env.ULTRACLOUD_REDFISH_INSECURE === '1' };
}

/** One call as evidence: what was asked and answered, never the credentials. */
export interface RedfishCall {
  at: string;
  method: string;
  path: string;
  status: number;
  body?: unknown;
}

type Json = Record<string, unknown>;

export class RedfishClient {
  readonly calls: RedfishCall[] = [];

  constructor(
    private readonly cfg: RedfishConfig,
    private readonly log: Logger,
  ) {}

  async request(method: string, path: string, body?: Json): Promise<Json> {
    const url = new URL(path, this.cfg.url);
    const payload = body ? JSON.stringify(body) : undefined;
    const auth = `Basic ${Buffer.from(`${this.cfg.username}:${this.cfg.password}`).toString('base64')}`;
    const mod = url.protocol === 'https:' ? https : http;
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method,
          headers: {
            authorization: auth,
            accept: 'application/json',
            ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
          },
          timeout: 30_000,
          ...(url.protocol === 'https:' ? { rejectUnauthorized: !this.cfg.insecure } : {}),
        },
        (r) => {
          let text = '';
          r.setEncoding('utf8');
          r.on('data', (c: string) => (text += c));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
      req.on('error', (err) =>
        reject(
          new CheckFailed(
            `redfish ${method} ${url.pathname}: ${err.message}${/self.signed|certificate/i.test(err.message) ? ' (a self-signed BMC certificate: set ULTRACLOUD_REDFISH_INSECURE=1 to accept it)' : ''}`,
          ),
        ),
      );
      if (payload) req.write(payload);
      req.end();
    });
    this.calls.push({ at: new Date().toISOString(), method, path: url.pathname, status: res.status, ...(body ? { body } : {}) });
    this.log.info(`redfish ${method} ${url.pathname} -> ${res.status}`);
    let data: Json = {};
    try {
      data = res.text ? (JSON.parse(res.text) as Json) : {};
    } catch {
      /* some BMCs answer actions with an empty or non-JSON body */
    }
    if (res.status >= 400) {
      const err = data.error as { message?: string; '@Message.ExtendedInfo'?: { Message?: string }[] } | undefined;
      const why = err?.['@Message.ExtendedInfo']?.[0]?.Message ?? err?.message ?? res.text.slice(0, 200);
      throw new CheckFailed(
        `redfish ${method} ${url.pathname} -> ${res.status}${res.status === 401 ? ' (credentials refused; check ULTRACLOUD_REDFISH_USERNAME/PASSWORD)' : ''}: ${why}`,
      );
    }
    return data;
  }

  private async firstMember(collection: string): Promise<string> {
    const c = await this.request('GET', collection);
    const id = (c.Members as { '@odata.id': string }[] | undefined)?.[0]?.['@odata.id'];
    if (!id) throw new CheckFailed(`redfish ${collection} has no members`);
    return id;
  }

  /** The manager's virtual media slot that takes a CD/DVD image. */
  async cdSlot(): Promise<string> {
    const manager = await this.firstMember('/redfish/v1/Managers');
    const slots = await this.request('GET', `${manager}/VirtualMedia`);
    for (const m of (slots.Members as { '@odata.id': string }[] | undefined) ?? []) {
      const slot = await this.request('GET', m['@odata.id']);
      if (((slot.MediaTypes as string[] | undefined) ?? []).some((t) => t === 'CD' || t === 'DVD')) return m['@odata.id'];
    }
    throw new CheckFailed(`redfish ${manager}/VirtualMedia has no CD/DVD slot`);
  }

  /** Insert the ISO, boot it once, power on (or force-restart a running machine). */
  async bootFromVirtualMedia(isoUrl: string): Promise<{ system: string; slot: string; reset: string }> {
    const system = await this.firstMember('/redfish/v1/Systems');
    const slot = await this.cdSlot();
    const current = await this.request('GET', slot);
    if (current.Inserted === true) await this.request('POST', `${slot}/Actions/VirtualMedia.EjectMedia`, {});
    await this.request('POST', `${slot}/Actions/VirtualMedia.InsertMedia`, { Image: isoUrl, Inserted: true, WriteProtected: true });
    await this.request('PATCH', system, { Boot: { BootSourceOverrideTarget: 'Cd', BootSourceOverrideEnabled: 'Once' } });
    const sys = await this.request('GET', system);
    const reset = sys.PowerState === 'On' ? 'ForceRestart' : 'On';
    await this.request('POST', `${system}/Actions/ComputerSystem.Reset`, { ResetType: reset });
    return { system, slot, reset };
  }
}
