import type { Node } from '../../cluster/node.js';
import { CheckFailed } from '../../core/errors.js';
import { StopWaiting, waitFor } from '../../core/retry.js';
import { http } from '../../probes/http.js';
import type { PlasmavmcClient, Vm } from '../../services/plasmavmc.js';
import type { Network, PrismnetClient } from '../../services/prismnet.js';
import type { TenantToken } from '../../services/tenant-api.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';

type Env = ClusterEnv<'plasmavmc' | 'prismnet' | 'coronafs'> & { state: RunState };

/** How long, and how busy at most, the DHCP worker's prismnet agent may be while nothing is being declared. */
const AGENT_IDLE_WINDOW_MS = 5000;
const AGENT_IDLE_MAX_CPU = 0.5;

/** What tenant B tries on tenant A's objects: every one must be a 404 (A's objects do not exist for B). */
function isolationProbes(net: Network, vm: Vm): { service: 'plasmavmc' | 'prismnet'; method: string; path: string; body?: unknown }[] {
  const port = vm.nics[0]!.port;
  return [
    { service: 'prismnet', method: 'GET', path: `/v1/networks/${net.id}` },
    { service: 'prismnet', method: 'POST', path: `/v1/networks/${net.id}/ports`, body: { name: 'intruder' } },
    { service: 'prismnet', method: 'DELETE', path: `/v1/networks/${net.id}` },
    { service: 'prismnet', method: 'GET', path: `/v1/ports/${port}` },
    { service: 'prismnet', method: 'POST', path: `/v1/ports/${port}/unbind`, body: { vm: vm.id } },
    { service: 'plasmavmc', method: 'GET', path: `/v1/vms/${vm.id}` },
    { service: 'plasmavmc', method: 'POST', path: `/v1/vms/${vm.id}/stop` },
    { service: 'plasmavmc', method: 'DELETE', path: `/v1/vms/${vm.id}` },
  ];
}

async function checkIsolation(plasmavmc: PlasmavmcClient, prismnet: PrismnetClient, b: TenantToken, net: Network, vm: Vm) {
  const leaks: string[] = [];
  for (const p of isolationProbes(net, vm)) {
    const r = await (p.service === 'plasmavmc' ? plasmavmc : prismnet).api.call(b, p.method, p.path, p.body);
    if (r.status !== 404) leaks.push(`${p.service} ${p.method} ${p.path} answered ${r.status} to tenant ${b.tenant}`);
  }
  if ((await prismnet.networks(b)).some((n) => n.id === net.id)) leaks.push(`tenant ${b.tenant} lists network ${net.id}`);
  if ((await plasmavmc.vms(b)).some((v) => v.id === vm.id)) leaks.push(`tenant ${b.tenant} lists vm ${vm.id}`);
  if (leaks.length) throw new CheckFailed(`tenant isolation broken: ${leaks.join('; ')}`);
}

/** GET a URL inside the tenant network, from a node that reaches it (the DHCP worker's bridge holds an address). */
async function tenantGet(via: Node, ip: string, path: string): Promise<string> {
  const r = await http('GET', `${await via.url(80, ip)}${path}`, { timeoutMs: 15_000 });
  return `${r.status} ${r.text.trim()}`;
}

/**
 * Two VMs on one tenant network, one per worker: each takes the address its port reserved and
 * the network's static route over DHCP, each reaches the other across workers over VXLAN, and the ports show their bindings (in
 * the API and as taps and leases on the workers); a security group closes a port and opens it; a
 * service IP balances over both. Deleting one VM removes its binding, tap, lease
 * and unit, and the port can be bound again. Tenant B sees none of it.
 */
export const vmNetworkBinding: Step<Env> = {
  name: 'vm-network-binding',
  proves:
    "two VMs on one tenant network (one per worker) get their DHCP addresses and the network's static route, and reach each other over VXLAN; bindings show in the API and as taps and leases; a security group without an HTTP rule closes a port and one with it opens it; a service IP over both answers from each, and not once deleted; deleting a VM removes its binding, tap, lease and unit, and the port binds again; another tenant sees and changes none of it; the DHCP worker's agent is idle while nothing changes, and keeps no service-IP table once none is declared",
  needs: ['worker-virtualization'],
  run: async ({ services: { plasmavmc, prismnet, coronafs }, cluster, state }, step) => {
    const hosted = state.hosted;
    if (!hosted) throw new CheckFailed('worker-virtualization left no VMs to network');
    const { tenant: a, other: b, network: net, vms } = hosted;
    const ipOf = (name: string) => cluster.node(name).spec.ip;
    const workers = vms.map((vm) => cluster.node(vm.worker));
    const dhcpNode = cluster.node(net.dhcpWorker);
    const planes = () => Promise.all(workers.map((n) => prismnet.dataplane(n, net)));
    /** A failure's message gains what the workers' data planes say about why; a known cause ends a wait at once. */
    const explain = async (e: unknown): Promise<never> => {
      const gaps = prismnet.floodGaps(await planes(), ipOf);
      if (!gaps.length) throw e;
      throw new StopWaiting(`${(e as Error).message}\ncause: ${gaps.join('; ')}`);
    };

    step.phase('dhcp addresses');
    // Each VM takes its DHCP address: the one its port reserved. Only the address is read: the
    // guest's kernel may print onto the console in the middle of the line ("ip=10.240.0.11[  61.2] ...").
    const addrs = await Promise.all(
      vms.map((vm) =>
        plasmavmc.waitForConsole(a, vm, new RegExp(`ULTRACLOUD_INNER_NET vm=${vm.id} ip=(\\d{1,3}(?:\\.\\d{1,3}){3})`), 'a DHCP address', {
          timeoutMs: 150_000,
          stopIf: /ULTRACLOUD_INNER_NET_FAILED vm=\S+/,
          log: step.log,
        }),
      ),
    ).catch(explain);
    vms.forEach((vm, i) => {
      if (addrs[i]!.match[1] !== vm.nics[0]!.ip)
        throw new CheckFailed(`vm ${vm.id} on ${vm.worker} took ${addrs[i]!.match[1]} but its port reserved ${vm.nics[0]!.ip}`);
    });

    step.phase('static routes');
    // The network's static route reached each guest over DHCP (option 121): the guest's own routing table says so.
    for (const route of net.routes) {
      const want = `${route.destination} via ${route.nextHop}`;
      await Promise.all(
        vms.map((vm) =>
          plasmavmc.waitForConsole(
            a,
            vm,
            new RegExp(`ULTRACLOUD_INNER_ROUTE vm=${vm.id} ${want.replaceAll('.', '\\.')}`),
            `the route ${want}`,
            {
              timeoutMs: 10_000,
              log: step.log,
            },
          ),
        ),
      );
    }

    step.phase('bindings');
    // Bindings: in the API, and as the workers have them (tap on the network's bridge, DHCP lease).
    const before = await planes();
    for (const vm of vms) {
      const nic = vm.nics[0]!;
      const port = await prismnet.port(a, nic.port);
      if (port.binding?.worker !== vm.worker || port.binding.vm !== vm.id || port.binding.tap !== nic.tap)
        throw new CheckFailed(
          `port ${nic.port} shows binding ${JSON.stringify(port.binding)}, not vm ${vm.id} on ${vm.worker} via ${nic.tap}`,
        );
      if (!before.find((p) => p.node === vm.worker)?.taps.includes(nic.tap))
        throw new CheckFailed(`${vm.worker}: tap ${nic.tap} of port ${nic.port} is not on the network's bridge`);
      if (!before.find((p) => p.node === net.dhcpWorker)?.leases.some((l) => l.mac === nic.mac && l.ip === nic.ip))
        throw new CheckFailed(`${net.dhcpWorker}: no DHCP lease ${nic.mac} -> ${nic.ip} for vm ${vm.id}`);
    }

    step.phase('agent idle');
    // Nothing changes now: the DHCP worker's agent, serving the network and its leases, is idle.
    const agentCpu = await prismnet.agentCpuShare(dhcpNode, AGENT_IDLE_WINDOW_MS);
    if (agentCpu > AGENT_IDLE_MAX_CPU)
      throw new CheckFailed(
        `${net.dhcpWorker}: prismnet-agent used ${Math.round(agentCpu * 100)}% of a CPU for ${AGENT_IDLE_WINDOW_MS / 1000} s with nothing to change: it reconciles in a loop (see its journal)`,
      );

    step.phase('reach across workers');
    // Across workers over VXLAN: the DHCP worker reaches each VM, and each VM reaches the other from inside.
    const reach: Record<string, string> = {};
    const reachBoth = async () => {
      for (const vm of vms) {
        reach[`${net.dhcpWorker} -> ${vm.id}`] = await tenantGet(dhcpNode, vm.nics[0]!.ip, '/');
        if (!reach[`${net.dhcpWorker} -> ${vm.id}`]!.includes(vm.id))
          throw new Error(`${net.dhcpWorker} cannot reach vm ${vm.id} (${vm.worker}) at ${vm.nics[0]!.ip}`);
      }
      for (const [x, y] of [vms, [...vms].reverse()] as Vm[][]) {
        const got = await tenantGet(dhcpNode, x!.nics[0]!.ip, `/cgi-bin/probe?ip=${y!.nics[0]!.ip}`);
        reach[`${x!.id} -> ${y!.id}`] = got;
        if (!got.includes(y!.id))
          throw new Error(`vm ${x!.id} (${x!.worker}) cannot reach vm ${y!.id} (${y!.worker}) at ${y!.nics[0]!.ip}: ${got}`);
      }
    };
    await waitFor('each VM reachable across workers', { timeoutMs: 30_000, intervalMs: 2000 }, () => reachBoth().catch(explain));

    step.phase('security groups');
    // Security groups: the last VM's port closed to HTTP (nftables on its worker), then opened to the network.
    const [x, y] = [vms[0]!, vms.at(-1)!];
    const probe = () => tenantGet(dhcpNode, x.nics[0]!.ip, `/cgi-bin/probe?ip=${y.nics[0]!.ip}`);
    const closed = await prismnet.createSecurityGroup(a, 'smoke-closed', [{ protocol: 'udp', port: 9 }]);
    const open = await prismnet.createSecurityGroup(a, 'smoke-http', [{ protocol: 'tcp', port: 80, from: net.cidr }]);
    await prismnet.setSecurityGroups(a, y.nics[0]!.port, [closed.id]);
    await waitFor(
      `vm ${y.id} (${y.worker}) refuses HTTP from vm ${x.id} under a group without that rule`,
      { timeoutMs: 30_000, intervalMs: 1000 },
      async () => {
        const got = await probe();
        if (got.includes(y.id)) throw new Error(`still answered: ${got}`);
      },
    );
    await prismnet.setSecurityGroups(a, y.nics[0]!.port, [open.id]);
    await waitFor(
      `vm ${y.id} answers HTTP from vm ${x.id} again under a group allowing tcp/80 from ${net.cidr}`,
      { timeoutMs: 30_000, intervalMs: 1000 },
      async () => {
        const got = await probe();
        if (!got.includes(y.id)) throw new Error(`not answered: ${got}`);
      },
    );
    await prismnet.setSecurityGroups(a, y.nics[0]!.port, []);
    for (const g of [closed, open]) await prismnet.deleteSecurityGroup(a, g.id);

    step.phase('service ip');
    // A service IP over both VMs: asked from inside the first, its port answers from each in turn; deleted, it answers no more.
    const sip = await prismnet.createServiceIp(a, net.id, { name: 'smoke-web', port: 80, backends: vms.map((v) => v.nics[0]!.port) });
    const viaSip = () => tenantGet(dhcpNode, x.nics[0]!.ip, `/cgi-bin/probe?ip=${sip.ip}`);
    const answeredBy = new Set<string>();
    await waitFor(
      `service IP ${sip.ip}:80 (on ${net.dhcpWorker}) answered by every backend VM, asked from vm ${x.id}`,
      {
        timeoutMs: 30_000,
        intervalMs: 500,
        maxIntervalMs: 1000,
        diagnostics: async () =>
          `cause: ${(await prismnet.serviceIpGaps(dhcpNode, net, sip)).join('; ') || 'none found on the DHCP worker'}`,
      },
      async () => {
        const got = await viaSip();
        const by = vms.find((v) => got.includes(v.id));
        if (by) answeredBy.add(by.id);
        if (answeredBy.size < vms.length) throw new Error(`answered by [${[...answeredBy].join(', ')}] so far; last: ${got}`);
      },
    );
    await prismnet.deleteServiceIp(a, sip.id);
    await waitFor(`deleted service IP ${sip.ip} no longer answers`, { timeoutMs: 30_000, intervalMs: 1000 }, async () => {
      const got = await viaSip();
      if (!got.includes('UNREACHABLE')) throw new Error(`still answered: ${got}`);
    });

    step.phase('tenant isolation');
    await checkIsolation(plasmavmc, prismnet, b, net, vms[0]!);

    step.phase('delete one vm');
    // Delete the VM on the last worker: its binding, tap, lease and unit go.
    const gone = vms.at(-1)!;
    const nic = gone.nics[0]!;
    const goneNode = cluster.node(gone.worker);
    await plasmavmc.deleteVm(a, gone.id);
    await waitFor(`vm ${gone.id}'s binding, tap, lease and unit gone`, { timeoutMs: 30_000, intervalMs: 500 }, async () => {
      const left: string[] = [];
      if ((await prismnet.port(a, nic.port)).binding) left.push(`port ${nic.port} still bound`);
      if ((await prismnet.tapsOn(goneNode)).includes(nic.tap)) left.push(`tap ${nic.tap} still on ${gone.worker}`);
      const dhcp = await prismnet.dataplane(dhcpNode, net);
      if (dhcp.leases.some((l) => l.mac === nic.mac)) left.push(`lease for ${nic.mac} still on ${net.dhcpWorker}`);
      if ((await plasmavmc.vmUnits(goneNode)).includes(gone.id)) left.push(`unit of vm ${gone.id} still on ${gone.worker}`);
      if (left.length) throw new Error(left.join('; '));
    });

    step.phase('rebind port');
    // The port binds again: a new VM takes it.
    const again = await plasmavmc.createVm(a, { name: 'smoke-rebind', image: hosted.image, worker: gone.worker, ports: [nic.port] });
    const rebound = await prismnet.port(a, nic.port);
    if (rebound.binding?.vm !== again.id)
      throw new CheckFailed(`port ${nic.port} did not bind to the new vm ${again.id}: ${JSON.stringify(rebound.binding)}`);
    for (const vm of [again, ...vms.slice(0, -1)]) await plasmavmc.deleteVm(a, vm.id);
    for (const vm of vms) await prismnet.deletePort(a, vm.nics[0]!.port);
    for (const d of vms.flatMap((vm) => vm.disks)) await coronafs.deleteVolume(a, d.volume);
    await prismnet.deleteNetwork(a, net.id);
    state.hosted = undefined;

    step.phase('cleanup');
    // Nothing of the run stays on the workers: no VM unit, no tap.
    await waitFor('no VM unit and no tap left on the workers', { timeoutMs: 30_000, intervalMs: 500 }, async () => {
      const left: string[] = [];
      for (const w of workers) {
        const units = await plasmavmc.vmUnits(w);
        const taps = await prismnet.tapsOn(w);
        if (units.length || taps.length) left.push(`${w}: units [${units.join(', ')}] taps [${taps.join(', ')}]`);
      }
      if (left.length) throw new Error(left.join('; '));
    });
    // With nothing declared, the DHCP worker keeps no service-IP table (no NAT hook for every packet).
    if ((await dhcpNode.exec(['nft', 'list', 'table', 'ip', 'prismnet_svc'])).code === 0)
      throw new CheckFailed(`${net.dhcpWorker}: nftables table ip prismnet_svc left behind with no service IP declared`);
    await step.json('vm-network-binding.json', {
      network: net,
      addresses: addrs.map((x) => x.match[1]),
      dataplane: before,
      reach,
      serviceIp: { ...sip, answeredBy: [...answeredBy] },
      deleted: gone.id,
      rebound: again.id,
      agentCpuIdle: agentCpu,
    });
    return `${vms.map((v) => `${v.id}@${v.worker}=${v.nics[0]!.ip}`).join(', ')} reach each other over VXLAN ${net.vni}; delete released ${nic.port} (tap, lease, unit gone) and it bound again; tenant ${b.tenant} got 404 on every probe`;
  },
};
