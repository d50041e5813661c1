import { z } from 'zod';
import { type HttpReply, http } from '../probes/http.js';
import { defineService, ServiceClient } from './service.js';

const Params = z.strictObject({});
type Params = z.output<typeof Params>;

/** The creditservice API under a base URL: the node's own port, or the gateway's /credit route. */
export class CreditApi {
  constructor(readonly base: string) {}

  reserve(tenant: string, amount: number, token?: string): Promise<HttpReply> {
    return http('POST', `${this.base}/v1/reservations`, {
      body: { tenant, amount },
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  }

  quota(tenant: string): Promise<HttpReply> {
    return http('GET', `${this.base}/v1/quotas/${encodeURIComponent(tenant)}`);
  }

  /** Settle a held reservation: the wallet pays its amount. */
  commit(id: string, token: string): Promise<HttpReply> {
    return http('POST', `${this.base}/v1/reservations/${encodeURIComponent(id)}/commit`, { headers: { authorization: `Bearer ${token}` } });
  }

  credit(tenant: string, amount: number, token: string): Promise<HttpReply> {
    return http('POST', `${this.base}/v1/wallets/${encodeURIComponent(tenant)}/credit`, {
      body: { amount },
      headers: { authorization: `Bearer ${token}` },
    });
  }

  /** Take `amount` from the wallet (metered usage); without a token it must be refused. */
  charge(tenant: string, amount: number, token?: string): Promise<HttpReply> {
    return http('POST', `${this.base}/v1/wallets/${encodeURIComponent(tenant)}/charge`, {
      body: { amount },
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  }

  wallet(tenant: string): Promise<HttpReply> {
    return http('GET', `${this.base}/v1/wallets/${encodeURIComponent(tenant)}`);
  }

  /** Would a workload of `amount` quota units costing `cost` be let in (`admitted`, and `reasons` if not)? */
  admission(tenant: string, amount: number, cost: number, token: string): Promise<HttpReply> {
    return http('POST', `${this.base}/v1/admission`, { body: { tenant, amount, cost }, headers: { authorization: `Bearer ${token}` } });
  }
}

export class CreditserviceClient extends ServiceClient<Params> {
  /** Talk to it through any base URL that routes to it (the gateway's route). */
  through(base: string): CreditApi {
    return new CreditApi(base);
  }
}

export const creditservice = defineService({
  name: 'creditservice',
  description: 'quota, wallet, reservation and admission (lab: small service, authorized by iam)',
  params: Params,
  client: (svc) => new CreditserviceClient(svc),
});
