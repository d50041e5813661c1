import { StopWaiting, waitFor } from '../../core/retry.js';
import type { DnsAnswer } from '../../services/flashdns.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';

type Env = ClusterEnv<'flashdns' | 'apigateway'> & { state: RunState };

/** The lane's zones are named after it (a rerun removes what an interrupted one left). */
const ZONE_PREFIX = 'smoke-';
const ZONE_SUFFIX = 'ultracloud.test';
/** The address the step's record points at (TEST-NET-2: never routed). */
const ADDRESS = '198.51.100.7';

/**
 * flashdns as its users meet it: a zone and a record added through the API on the flaredb
 * primary, then real DNS queries from outside the control plane (the gateway) to every
 * control-plane node, each of which must answer authoritatively from its own flaredb; a deleted
 * zone is answered by none.
 */
export const dnsRecords: Step<Env> = {
  name: 'dns-records',
  proves:
    'a zone and an A record added through the flashdns API are answered authoritatively (aa) by every control-plane node, each from its own flaredb replica, to a query from the gateway node; once the zone is deleted no node answers for it',
  needs: ['readiness'],
  run: async ({ services: { flashdns, apigateway }, state }, step) => {
    for (const left of await flashdns.zones(ZONE_PREFIX)) await flashdns.deleteZone(left);
    const zone = `${ZONE_PREFIX}${state.runId}.${ZONE_SUFFIX}`;
    const name = `web.${zone}`;
    const servers = flashdns.nodes();
    const client = apigateway.nodes()[0]!;
    await flashdns.createZone(
      zone,
      servers.map((n) => `${n.name}.${zone}`),
    );
    await flashdns.setRecords(zone, name, 'A', [ADDRESS]);
    const answers: Record<string, DnsAnswer> = {};
    try {
      await waitFor(
        `every flashdns node answers ${name} A ${ADDRESS} authoritatively (asked from ${client})`,
        { timeoutMs: 30_000, intervalMs: 500, maxIntervalMs: 2000 },
        async () => {
          for (const n of servers) answers[n.name] = await flashdns.query(client, n.spec.ip, name);
          const wrong = servers.filter((n) => {
            const a = answers[n.name]!;
            return a.status !== 'NOERROR' || !a.authoritative || !a.answers.includes(ADDRESS);
          });
          if (!wrong.length) return;
          // The API reads the primary's flaredb: a record it no longer has will not be replayed anywhere.
          const rr = (await flashdns.rrsets(zone))?.find((r) => r.name === `${name}.` && r.type === 'A');
          const seen = wrong
            .map(
              (n) =>
                `${n}: ${answers[n.name]!.status}${answers[n.name]!.authoritative ? ' aa' : ''} [${answers[n.name]!.answers.join(', ')}]`,
            )
            .join('; ');
          if (!rr)
            throw new StopWaiting(
              `${seen}; cause: the zone on ${flashdns.apiNode()} (flaredb primary) holds no A record for ${name}, which the API accepted: it was deleted behind the API's back`,
            );
          throw new Error(seen);
        },
      );
    } finally {
      await step.evidence(
        'flashdns-authoritative-answers.txt',
        Object.entries(answers)
          .map(([n, a]) => `;; ${n} (${a.server}), asked from ${client}\n${a.text}`)
          .join('\n'),
      );
    }

    await flashdns.deleteZone(zone);
    await waitFor(`no flashdns node answers for the deleted zone ${zone}`, { timeoutMs: 30_000, intervalMs: 500 }, async () => {
      const still = [];
      for (const n of servers) {
        const a = await flashdns.query(client, n.spec.ip, name);
        // A node that does not reply has not proven anything: it must answer, and without the record.
        if (a.answers.length || a.status.startsWith('NO REPLY')) still.push(`${n}: ${a.status} [${a.answers.join(', ')}]`);
      }
      if (still.length) throw new Error(still.join('; '));
    });
    await step.json('dns-records.json', { zone, name, address: ADDRESS, client: client.name, answers });
    return `${name} A ${ADDRESS} answered authoritatively by ${servers.join(', ')} (asked from ${client}); gone from all once the zone was deleted`;
  },
};
