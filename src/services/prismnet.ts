import { setTimeout } from 'node:timers/promises';
import { z } from 'zod';
import type { Node } from '../cluster/node.js';
import { CheckFailed } from '../core/errors.js';
import { defineService } from './service.js';
import { ControlApiClient, type TenantToken } from './tenant-api.js';

const Params = z.strictObject({
  /** Where prismnet-agent keeps a DHCP network's state on its worker: <dir>/<vni>/leases. */
  dhcpStateDir: z.string().startsWith('/').default('/var/lib/prismnet'),
});
type Params = z.output<typeof Params>;

export interface Network {
  id: string;
  name: string;
  cidr: string;
  vni: number;
  mtu: number;
  dhcpWorker: string;
  dhcpServer: string;
  /** Static routes its guests take over DHCP (option 121). */
  routes: Route[];
}

export interface Route {
  destination: string;
  nextHop: string;
}

export interface Port {
  id: string;
  network: string;
  mac: string;
  ip: string;
  binding: { worker: string; vm: string; tap: string } | null;
}

/** An address of a network whose TCP port the network's DHCP worker balances over the backend ports. */
export interface ServiceIp {
  id: string;
  network: string;
  name: string;
  ip: string;
  port: number;
  /** Port ids. */
  backends: string[];
}

/** An ingress rule of a security group: traffic to a guarded port is dropped unless one matches. */
export interface SecurityRule {
  protocol: 'tcp' | 'udp' | 'icmp';
  port?: number;
  from?: string;
}

/** One worker's data plane for a network, read from its kernel and files (not from the agent's report). */
export interface Dataplane {
  node: string;
  bridge: string | null;
  vxlan: string | null;
  /** VXLAN flood (all-zero MAC) entries: the other workers' addresses this worker sends to. */
  flood: string[];
  /** Taps enslaved to the network's bridge. */
  taps: string[];
  /** DHCP leases (on the network's DHCP worker). */
  leases: { mac: string; ip: string }[];
}

// The lab agent's device names: a bridge and a VXLAN device per network, a tap per bound port.
const bridgeOf = (net: Network) => `pnb${net.vni}`;
const vxlanOf = (net: Network) => `pnx${net.vni}`;

/** prismnet's control API (tenant networks and ports) and what its agents made of them on the workers. */
export class PrismnetClient extends ControlApiClient<Params> {
  /** One API node's /health: which worker agents it sees registered. */
  async health(node: Node): Promise<{ agents: string[] }> {
    return this.healthOf(node);
  }

  async agents(who: TenantToken): Promise<{ node: string; ip: string }[]> {
    return (await this.api.ok<{ agents: { node: string; ip: string }[] }>(who, 'GET', '/v1/agents')).agents;
  }

  /** `egress`: its guests reach the cluster network through the DHCP worker (masqueraded). */
  createNetwork(who: TenantToken, name: string, cidr: string, o: { egress?: boolean } = {}): Promise<Network> {
    return this.api.ok(who, 'POST', '/v1/networks', { name, cidr, ...o });
  }

  addRoute(who: TenantToken, network: string, route: Route): Promise<Network> {
    return this.api.ok(who, 'POST', `/v1/networks/${network}/routes`, route);
  }

  async networks(who: TenantToken): Promise<Network[]> {
    return (await this.api.ok<{ networks: Network[] }>(who, 'GET', '/v1/networks')).networks;
  }

  deleteNetwork(who: TenantToken, id: string): Promise<unknown> {
    return this.api.ok(who, 'DELETE', `/v1/networks/${id}`);
  }

  createPort(who: TenantToken, network: string, name: string): Promise<Port> {
    return this.api.ok(who, 'POST', `/v1/networks/${network}/ports`, { name });
  }

  port(who: TenantToken, id: string): Promise<Port> {
    return this.api.ok(who, 'GET', `/v1/ports/${id}`);
  }

  async ports(who: TenantToken): Promise<Port[]> {
    return (await this.api.ok<{ ports: Port[] }>(who, 'GET', '/v1/ports')).ports;
  }

  unbind(who: TenantToken, id: string, vm: string): Promise<Port> {
    return this.api.ok(who, 'POST', `/v1/ports/${id}/unbind`, { vm });
  }

  deletePort(who: TenantToken, id: string): Promise<unknown> {
    return this.api.ok(who, 'DELETE', `/v1/ports/${id}`);
  }

  createSecurityGroup(who: TenantToken, name: string, rules: SecurityRule[]): Promise<{ id: string }> {
    return this.api.ok(who, 'POST', '/v1/security-groups', { name, rules });
  }

  async securityGroups(who: TenantToken): Promise<{ id: string }[]> {
    return (await this.api.ok<{ securityGroups: { id: string }[] }>(who, 'GET', '/v1/security-groups')).securityGroups;
  }

  deleteSecurityGroup(who: TenantToken, id: string): Promise<unknown> {
    return this.api.ok(who, 'DELETE', `/v1/security-groups/${id}`);
  }

  /** Replace a port's security groups; [] opens it again. */
  setSecurityGroups(who: TenantToken, port: string, ids: string[]): Promise<Port> {
    return this.api.ok(who, 'PUT', `/v1/ports/${port}/security-groups`, { securityGroups: ids });
  }

  createServiceIp(who: TenantToken, network: string, sip: { name: string; port: number; backends: string[] }): Promise<ServiceIp> {
    return this.api.ok(who, 'POST', `/v1/networks/${network}/service-ips`, sip);
  }

  async serviceIps(who: TenantToken): Promise<ServiceIp[]> {
    return (await this.api.ok<{ serviceIps: ServiceIp[] }>(who, 'GET', '/v1/service-ips')).serviceIps;
  }

  deleteServiceIp(who: TenantToken, id: string): Promise<unknown> {
    return this.api.ok(who, 'DELETE', `/v1/service-ips/${id}`);
  }

  async dataplane(node: Node, net: Network): Promise<Dataplane> {
    const links = JSON.parse(await node.succeed(['ip', '-d', '-j', 'link', 'show'])) as { ifname: string; master?: string }[];
    const has = (n: string) => links.some((l) => l.ifname === n);
    const fdb = has(vxlanOf(net))
      ? (JSON.parse(await node.succeed(['bridge', '-j', 'fdb', 'show', 'dev', vxlanOf(net)])) as { mac: string; dst?: string }[])
      : [];
    const leases = await node.exec(['cat', `${this.svc.params.dhcpStateDir}/${net.vni}/leases`]);
    return {
      node: node.name,
      bridge: has(bridgeOf(net)) ? bridgeOf(net) : null,
      vxlan: has(vxlanOf(net)) ? vxlanOf(net) : null,
      flood: fdb.filter((e) => e.mac === '00:00:00:00:00:00' && e.dst).map((e) => e.dst!),
      taps: links.filter((l) => l.master === bridgeOf(net) && l.ifname.startsWith('pnt')).map((l) => l.ifname),
      leases:
        leases.code === 0
          ? leases.stdout
              .split('\n')
              .filter(Boolean)
              .map((l) => ({ mac: l.split(' ')[1]!, ip: l.split(' ')[2]! }))
          : [],
    };
  }

  /** Every tap a prismnet agent made on the node, on any network (none may outlive its binding). */
  /** What the network's DHCP worker does for its egress: forwarding on, and its masquerade rule; one line naming both. */
  async egressState(node: Node, net: Network): Promise<string> {
    const forward = (await node.exec(['sysctl', '-n', 'net.ipv4.ip_forward'])).stdout.trim();
    const table = await node.exec(['nft', 'list', 'table', 'ip', 'prismnet_svc']);
    const masq = table.stdout
      .split('\n')
      .find((l) => l.includes(`pnb${net.vni}`) && l.includes('masquerade'))
      ?.trim();
    return `egress of ${net.id} on ${node}: ip_forward=${forward || '?'}, masquerade: ${masq ?? (table.code ? 'no prismnet_svc table' : 'no rule for its bridge')}`;
  }

  async tapsOn(node: Node): Promise<string[]> {
    const links = JSON.parse(await node.succeed(['ip', '-j', 'link', 'show'])) as { ifname: string }[];
    return links.map((l) => l.ifname).filter((n) => n.startsWith('pnt'));
  }

  /**
   * Why a service IP does not answer, as its DHCP worker's kernel has it: the address missing from
   * the network's bridge, no DNAT rule for its port, or forwarding off. Empty when all are there.
   */
  async serviceIpGaps(node: Node, net: Network, sip: ServiceIp): Promise<string[]> {
    const gaps: string[] = [];
    const addrs = JSON.parse(await node.succeed(['ip', '-j', '-4', 'addr', 'show', 'dev', bridgeOf(net)])) as {
      addr_info?: { local: string }[];
    }[];
    if (!addrs.some((l) => l.addr_info?.some((a) => a.local === sip.ip))) gaps.push(`${sip.ip} is not on ${bridgeOf(net)}`);
    const nat = await node.exec(['nft', 'list', 'chain', 'ip', 'prismnet_svc', 'prerouting']);
    if (!nat.stdout.includes(`ip daddr ${sip.ip} tcp dport ${sip.port} dnat`)) gaps.push(`no DNAT rule for ${sip.ip}:${sip.port}`);
    if ((await node.succeed(['sysctl', '-n', 'net.ipv4.ip_forward'])).trim() !== '1') gaps.push('IPv4 forwarding is off');
    return gaps.map((g) => `${node.name}: ${g}`);
  }

  /**
   * The share of one CPU the node's prismnet agent (with the commands it runs) used over a window
   * in which nothing was declared or changed: near zero unless it reconciles in a loop.
   */
  async agentCpuShare(node: Node, windowMs: number): Promise<number> {
    const used = async () => Number(await node.succeed(['systemctl', 'show', '-P', 'CPUUsageNSec', 'prismnet-agent.service']));
    const [n0, t0] = [await used(), performance.now()];
    await setTimeout(windowMs);
    const [n1, t1] = [await used(), performance.now()];
    if (!Number.isFinite(n0) || !Number.isFinite(n1)) throw new CheckFailed(`${node.name}: prismnet-agent.service has no CPU accounting`);
    return (n1 - n0) / 1e6 / (t1 - t0);
  }

  /** Workers whose VXLAN device for the network lacks a flood entry for another worker: why traffic cannot cross. */
  floodGaps(planes: Dataplane[], ipOf: (node: string) => string): string[] {
    return planes.flatMap((p) =>
      planes
        .filter((q) => q.node !== p.node && p.vxlan && !p.flood.includes(ipOf(q.node)))
        .map((q) => `${p.node}: ${p.vxlan} has no VXLAN flood entry for ${q.node} (${ipOf(q.node)})`),
    );
  }
}

export const prismnet = defineService({
  name: 'prismnet',
  description: 'tenant networking control API (lab: small service, state in chainfire; agents on workers apply VXLAN, taps, dnsmasq)',
  params: Params,
  client: (svc) => new PrismnetClient(svc),
});
