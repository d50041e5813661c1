import type { CoronafsClient } from '../../services/coronafs.js';
import type { IamClient } from '../../services/iam.js';
import type { ServiceClients } from '../../services/index.js';
import type { PlasmavmcClient } from '../../services/plasmavmc.js';
import type { PrismnetClient } from '../../services/prismnet.js';
import type { TenantToken } from '../../services/tenant-api.js';
import { removeBuckets } from './storage-api.js';

/**
 * The lane's tenants: fixed names, so a run can find and remove what an interrupted run left
 * behind (VMs, ports, networks) before it starts, and after it ends.
 */
export async function laneTenants(iam: IamClient, lane: string): Promise<{ a: TenantToken; b: TenantToken }> {
  const issuer = iam.nodes()[0]!;
  const token = async (tenant: string) => ({ tenant, token: (await iam.issue(issuer, { subject: tenant, ttlSeconds: 3600 })).token });
  return { a: await token(`${lane}-tenant-a`), b: await token(`${lane}-tenant-b`) };
}

/** Delete everything a tenant has: VMs first (their ports and volumes are released), then volumes, ports, security groups, networks. */
export async function sweepTenant(
  who: TenantToken,
  plasmavmc: PlasmavmcClient,
  prismnet: PrismnetClient,
  coronafs: CoronafsClient,
): Promise<string[]> {
  const gone: string[] = [];
  for (const vm of await plasmavmc.vms(who)) {
    await plasmavmc.deleteVm(who, vm.id);
    gone.push(vm.id);
  }
  // With every VM gone, an attachment or binding left is stale (a VM whose creation failed half-way).
  for (const v of await coronafs.volumes(who)) {
    if (v.attachedTo) await coronafs.detach(who, v.id, v.attachedTo);
    await coronafs.deleteVolume(who, v.id);
    gone.push(v.id);
  }
  for (const sip of await prismnet.serviceIps(who)) {
    await prismnet.deleteServiceIp(who, sip.id); // before the ports it balances over
    gone.push(sip.id);
  }
  for (const p of await prismnet.ports(who)) {
    if (p.binding) await prismnet.unbind(who, p.id, p.binding.vm);
    await prismnet.deletePort(who, p.id);
    gone.push(p.id);
  }
  for (const g of await prismnet.securityGroups(who)) {
    await prismnet.deleteSecurityGroup(who, g.id);
    gone.push(g.id);
  }
  for (const n of await prismnet.networks(who)) {
    await prismnet.deleteNetwork(who, n.id);
    gone.push(n.id);
  }
  return gone;
}

/** A VM lane's teardown: its tenants' VMs, volumes, ports and networks, then its buckets (`bucketPrefix`). */
export async function sweepLane(
  lane: string,
  s: Pick<ServiceClients, 'iam' | 'plasmavmc' | 'prismnet' | 'coronafs' | 'lightningstor'>,
  bucketPrefix: string,
): Promise<void> {
  const t = await laneTenants(s.iam, lane);
  for (const who of [t.a, t.b]) await sweepTenant(who, s.plasmavmc, s.prismnet, s.coronafs);
  await removeBuckets(await s.lightningstor.s3(), bucketPrefix);
}
