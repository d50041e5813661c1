import type { z } from 'zod';
import type { Cluster } from '../cluster/cluster.js';
import type { ServiceParamCheck } from '../config/profile.js';
import { UsageError } from '../core/errors.js';
import { apigateway } from './apigateway.js';
import { chainfire } from './chainfire.js';
import { coronafs } from './coronafs.js';
import { creditservice } from './creditservice.js';
import { deployer } from './deployer.js';
import { fiberlb } from './fiberlb.js';
import { flaredb } from './flaredb.js';
import { flaredbHttp } from './flaredb-http.js';
import { flashdns } from './flashdns.js';
import { fleetScheduler, nodeAgent } from './fleet.js';
import { iam } from './iam.js';
import { k8shost } from './k8shost.js';
import { lightningstor, lightningstorAccount, lightningstorContainer, lightningstorObject } from './lightningstor.js';
import { nightlight } from './nightlight.js';
import { plasmavmc } from './plasmavmc.js';
import { prismnet } from './prismnet.js';
import { ServiceContext, type ServiceModule } from './service.js';
import { coronafsAgent, plasmavmcAgent, prismnetAgent } from './worker-agent.js';

/** Every service the harness speaks to, by its profile name: add a module, add it here. */
export const SERVICES = {
  chainfire,
  flaredb,
  'flaredb-http': flaredbHttp,
  iam,
  flashdns,
  apigateway,
  nightlight,
  creditservice,
  fiberlb,
  plasmavmc,
  'plasmavmc-agent': plasmavmcAgent,
  prismnet,
  'prismnet-agent': prismnetAgent,
  coronafs,
  'coronafs-agent': coronafsAgent,
  k8shost,
  deployer,
  'fleet-scheduler': fleetScheduler,
  'node-agent': nodeAgent,
  lightningstor,
  'lightningstor-object': lightningstorObject,
  'lightningstor-container': lightningstorContainer,
  'lightningstor-account': lightningstorAccount,
} as const;

export type ServiceName = keyof typeof SERVICES;
type ClientOf<M> = M extends ServiceModule<z.ZodType, infer C> ? C : never;
export type ServiceClients = { [K in ServiceName]: ClientOf<(typeof SERVICES)[K]> };

/** What the profile loader checks each `services.<name>.params` against (config cannot import this layer). */
export const SERVICE_PARAMS: Record<string, ServiceParamCheck> = Object.fromEntries(
  Object.entries(SERVICES).map(([n, m]) => [n, m.params]),
);

/** Clients for the services a lane needs; a profile without one of them is bad input naming it. */
export function bindServices<K extends ServiceName>(cluster: Cluster, names: readonly K[]): Pick<ServiceClients, K> {
  const missing = names.filter((n) => !cluster.profile.services[n]);
  if (missing.length)
    throw new UsageError(
      `profile ${cluster.profile.name} has no ${missing.join(', ')} in its services (this lane needs: ${names.join(', ')})`,
    );
  const out: Partial<ServiceClients> = {};
  for (const name of names) {
    const module = SERVICES[name] as ServiceModule<z.ZodType, unknown>;
    const contract = cluster.profile.services[name]!;
    // The profile loader already validated the params with this schema; parsing again only types them.
    (out as Record<string, unknown>)[name] = module.client(
      new ServiceContext(name, contract, module.params.parse(contract.params), cluster),
    );
  }
  return out as Pick<ServiceClients, K>;
}
