import type { FleetService } from './store.js';

/** Where fleet-scheduler reads the services it places (one key per service, the deployer's record as JSON). */
export const SERVICES_PREFIX = '/ultracloud/fleet/services/';
const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString();

/**
 * Publishing to chainfire through its v3 JSON gateway (the deployer bundle carries no etcd
 * client): the keys under SERVICES_PREFIX become exactly the declared services, what differs put,
 * what is no longer declared deleted. Each endpoint is tried in turn.
 */
export function chainfirePublisher(endpoints: string[]): (services: Record<string, FleetService>) => Promise<void> {
  const call = async (path: string, body: unknown): Promise<{ kvs?: { key: string; value: string }[] }> => {
    let last = 'no endpoint';
    for (const base of endpoints) {
      try {
        const r = await fetch(`${base}${path}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
        if (r.ok) return (await r.json()) as { kvs?: { key: string; value: string }[] };
        last = `${base}${path} answered ${r.status}`;
      } catch (err) {
        last = `${base}${path}: ${(err as Error).message}`;
      }
    }
    throw new Error(`chainfire unavailable: ${last}`);
  };
  const end = Buffer.from(SERVICES_PREFIX);
  end[end.length - 1]! += 1;
  return async (services) => {
    const listed = await call('/v3/kv/range', { key: b64(SERVICES_PREFIX), range_end: end.toString('base64') });
    const have = new Map((listed.kvs ?? []).map((kv) => [unb64(kv.key).slice(SERVICES_PREFIX.length), unb64(kv.value)]));
    for (const [name, svc] of Object.entries(services)) {
      const value = JSON.stringify(svc);
      if (have.get(name) !== value) await call('/v3/kv/put', { key: b64(SERVICES_PREFIX + name), value: b64(value) });
    }
    for (const name of have.keys()) if (!(name in services)) await call('/v3/kv/deleterange', { key: b64(SERVICES_PREFIX + name) });
  };
}
