import { CheckFailed } from '../../core/errors.js';
import { StopWaiting, waitFor } from '../../core/retry.js';
import { type HttpReply, http } from '../../probes/http.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';

type Env = ClusterEnv<'apigateway' | 'iam' | 'nightlight' | 'creditservice'> & { state: RunState };

const CREDIT = 40;
const RESERVED = 10;
/** The metered usage the tenant is charged for: written to nightlight, read back, charged. */
const USAGE = 7;

/**
 * apigateway-mediated nightlight and creditservice: a client that reaches the platform only
 * through the gateway gets a token, funds a wallet, is admitted and pays a reservation; its
 * metered usage goes into nightlight and is charged from the wallet; and nightlight, which scrapes
 * creditservice, shows every balance the wallet passed through.
 */
export const gatewayMeteredUsage: Step<Env> = {
  name: 'gateway-metered-usage',
  proves:
    "only through apigateway: an iam token; creditservice funds a wallet, admits a workload and takes its committed reservation from the wallet, and refuses a charge without a token; a usage sample remote-written to nightlight is queried back and charged; nightlight's scrape of creditservice shows the wallet's balance after each change",
  needs: ['readiness'],
  run: async ({ services: { apigateway, iam, nightlight, creditservice }, state }, step) => {
    const tenant = `${state.lane}-${state.runId}`;
    const ev: Record<string, unknown> = { tenant };
    const answered = async (what: string, want: number, reply: Promise<HttpReply>) => {
      const r = await reply;
      ev[what] = { status: r.status, body: r.json ?? r.text.slice(0, 300) };
      if (r.status !== want)
        throw new CheckFailed(`${what} through apigateway: expected HTTP ${want}, got ${r.status}: ${r.text.slice(0, 300)}`);
      return r.json as Record<string, unknown>;
    };
    const viaNightlight = await apigateway.route('nightlight');
    /** nightlight's scrape shows the wallet at `balance` (through the gateway); a missing scrape job is named at once. */
    const balanceShows = (balance: number) =>
      waitFor(
        `nightlight (through apigateway) shows ${tenant}'s wallet at ${balance}`,
        { timeoutMs: 45_000, intervalMs: 1000 },
        async () => {
          const jobs = await nightlight.scrapeTargets(viaNightlight);
          const credit = jobs.find((j) => j.job === 'creditservice');
          if (!credit)
            throw new StopWaiting(
              `cause: nightlight scrapes no creditservice target (active jobs: ${jobs.map((j) => `${j.job} ${j.health}`).join(', ') || 'none'})`,
            );
          if (credit.health === 'down') throw new Error(`nightlight's scrape of creditservice is down: ${credit.lastError}`);
          const got = await nightlight.queryValue(`creditservice_wallet_balance{tenant="${tenant}"}`, viaNightlight);
          if (got !== balance) throw new Error(`it shows ${got}`);
        },
      );
    try {
      step.phase('token');
      const iamBase = await apigateway.route('iam');
      const token = (
        await answered(
          'iam token issue',
          201,
          http('POST', `${iamBase}${iam.paths().issue}`, { body: { subject: tenant, ttlSeconds: 600 } }),
        )
      ).token as string;

      step.phase('wallet');
      const credit = creditservice.through(await apigateway.route('credit'));
      await answered('creditservice wallet credit', 200, credit.credit(tenant, CREDIT, token));
      const admitted = await answered('creditservice admission', 200, credit.admission(tenant, RESERVED, RESERVED, token));
      if (admitted.admitted !== true)
        throw new CheckFailed(`creditservice refused admission within quota and funds: ${JSON.stringify(admitted)}`);
      const held = await answered('creditservice reservation', 201, credit.reserve(tenant, RESERVED, token));
      await answered('creditservice commit', 200, credit.commit((held.reservation as { id: string }).id, token));
      await answered('creditservice charge without a token', 401, credit.charge(tenant, 1));
      await balanceShows(CREDIT - RESERVED);

      step.phase('metered usage');
      const metric = 'ultracloud_tenant_usage_units';
      const written = await nightlight.remoteWrite(
        [{ labels: { __name__: metric, tenant }, value: USAGE, timestampMs: Date.now() }],
        viaNightlight,
      );
      ev['nightlight remote-write'] = written;
      if (written.status !== 204 && written.status !== 200)
        throw new CheckFailed(`nightlight refused a usage sample through apigateway: ${written.status} ${written.text}`);
      const usage = await waitFor(`nightlight (through apigateway) returns ${tenant}'s usage`, { timeoutMs: 30_000 }, () =>
        nightlight.queryValue(`${metric}{tenant="${tenant}"}`, viaNightlight),
      );
      ev.usage = usage;
      if (usage !== USAGE) throw new CheckFailed(`nightlight returned usage ${usage} for ${tenant}, ${USAGE} was written`);
      const charged = await answered('creditservice charge of the metered usage', 200, credit.charge(tenant, usage, token));
      const balance = CREDIT - RESERVED - USAGE;
      if (charged.balance !== balance)
        throw new CheckFailed(`the wallet of ${tenant} holds ${charged.balance} after the charge, expected ${balance}`);
      await balanceShows(balance);
      return `${tenant}: credited ${CREDIT}, admitted and paid a reservation of ${RESERVED}, charged ${USAGE} of metered usage; nightlight showed ${CREDIT - RESERVED} then ${balance}, all through apigateway`;
    } finally {
      await step.json('gateway-metered-usage.json', ev);
    }
  },
};
