import { CheckFailed } from '../../core/errors.js';
import { waitFor } from '../../core/retry.js';
import { type HttpReply, http } from '../../probes/http.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';

type Ctx = ClusterEnv<'apigateway' | 'flaredb-http' | 'iam' | 'nightlight' | 'creditservice'> & { state: RunState };

/** What a client outside the cluster sees: the gateway's routes, nightlight's remote write and query, creditservice's reservations, wallet and admission. */
export const externalEntrypoints: Step<Ctx> = {
  name: 'external-entrypoints',
  proves:
    'from the host: apigateway routes to iam, flaredb and nightlight; nightlight accepts a snappy protobuf remote-write sample and a query returns it (directly and through the gateway); creditservice reserves with a token, refuses without one and over quota, admits a workload within quota and funds and refuses one beyond both naming why, and its wallet pays a committed reservation',
  needs: ['readiness', 'replicated-state'],
  run: async ({ services, state }, step) => {
    const { apigateway, iam, nightlight, creditservice } = services;
    const written = state.written;
    if (!written) throw new CheckFailed('replicated-state wrote no row to read back (it must run first)');
    const ev: Record<string, unknown> = { gateway: await apigateway.url(), nightlight: await nightlight.url() };
    /** One request whose status must be `want`; every reply goes into the evidence either way. */
    const record = async (what: string, want: number, reply: Promise<HttpReply>) => {
      const r = await reply;
      ev[what] = { status: r.status, body: r.text.slice(0, 500) };
      if (r.status !== want) throw new CheckFailed(`${what}: expected HTTP ${want}, got ${r.status}: ${r.text.slice(0, 300)}`);
      return r;
    };
    try {
      const iamBase = await apigateway.route('iam');
      await record('apigateway -> iam /health', 200, http('GET', `${iamBase}/health`));
      const tok = await record(
        'apigateway -> iam token issue',
        201,
        http('POST', `${iamBase}${iam.paths().issue}`, { body: { subject: 'smoke-external', ttlSeconds: 600 } }),
      );
      const token = (tok.json as { token: string }).token;
      const row = await services['flaredb-http'].read(await apigateway.route('flaredb'), written.flaredbKey);
      ev['apigateway -> flaredb read of the replicated row'] = row;
      if (row.status !== 200 || row.value !== written.value)
        throw new CheckFailed(
          `apigateway -> flaredb read of ${written.flaredbKey}: HTTP ${row.status}, value ${JSON.stringify(row.value)}, expected ${written.value}`,
        );

      const metric = 'ultracloud_smoke_probe';
      const value = 42 + Math.round(Math.random() * 1000) / 10;
      const wr = await nightlight.remoteWrite([{ labels: { __name__: metric, run: state.runId }, value, timestampMs: Date.now() }]);
      ev['nightlight remote-write'] = wr;
      if (wr.status !== 204 && wr.status !== 200)
        throw new CheckFailed(`nightlight refused a remote-write sample: ${wr.status} ${wr.text}`);
      const q = `${metric}{run="${state.runId}"}`;
      const got = await waitFor('nightlight query returns the remote-written sample', { timeoutMs: 30_000 }, () =>
        nightlight.queryValue(q),
      );
      ev['nightlight query'] = { query: q, value: got };
      if (got !== value) throw new CheckFailed(`nightlight returned ${got} for ${q}, wrote ${value}`);
      const viaGateway = await nightlight.queryValue(q, await apigateway.route('nightlight'));
      ev['apigateway -> nightlight query'] = { query: q, value: viaGateway };
      if (viaGateway !== value) throw new CheckFailed(`apigateway -> nightlight returned ${viaGateway} for ${q}, wrote ${value}`);

      const credit = creditservice.through(await apigateway.route('credit'));
      const tenant = `smoke-${state.runId}`;
      const held = await record('creditservice reservation with a valid token', 201, credit.reserve(tenant, 10, token));
      await record('creditservice reservation without a token', 401, credit.reserve(tenant, 10));
      const quota = await record('creditservice quota', 200, credit.quota(tenant));
      if ((quota.json as { reserved: number }).reserved !== 10)
        throw new CheckFailed(`creditservice quota shows ${quota.text}, expected 10 reserved`);
      await record('creditservice refuses a reservation over quota', 409, credit.reserve(tenant, 1000, token));
      // Wallet and admission: credited, a workload is admitted within quota and funds and refused with both reasons beyond them; the reservation is paid for.
      await record('creditservice wallet credit', 200, credit.credit(tenant, 25, token));
      const admitted = await record('creditservice admission within quota and funds', 200, credit.admission(tenant, 10, 20, token));
      if ((admitted.json as { admitted: boolean }).admitted !== true)
        throw new CheckFailed(`creditservice refused admission within quota and funds: ${admitted.text}`);
      const refused = await record('creditservice admission beyond quota and funds', 200, credit.admission(tenant, 100, 26, token));
      const why = refused.json as { admitted?: boolean; reasons?: string[] } | undefined;
      const reasons = Array.isArray(why?.reasons) ? why.reasons : [];
      if (why?.admitted !== false || !reasons.some((r) => r.startsWith('quota')) || !reasons.some((r) => r.startsWith('funds')))
        throw new CheckFailed(`creditservice admission beyond quota and funds: ${refused.text} (expected a refusal naming both)`);
      const id = (held.json as { reservation: { id: string } }).reservation.id;
      await record('creditservice commits the reservation (the wallet pays)', 200, credit.commit(id, token));
      const wallet = await record('creditservice wallet after the commit', 200, credit.wallet(tenant));
      if ((wallet.json as { balance: number }).balance !== 15)
        throw new CheckFailed(`creditservice wallet shows ${wallet.text}, expected 25 - 10 = 15`);
      return `apigateway routes to iam, flaredb and nightlight; nightlight stored and returned ${value}; creditservice reserved with a token (refused without one and over quota), admitted within quota and funds and refused beyond both, and the wallet paid the commit`;
    } finally {
      await step.json('external.json', ev);
    }
  },
};
