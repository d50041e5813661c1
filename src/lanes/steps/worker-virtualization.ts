import { seconds } from '../../core/time.js';
import type { Vm } from '../../services/plasmavmc.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';
import { laneTenants, sweepTenant } from './tenants.js';

type Env = ClusterEnv<'iam' | 'plasmavmc' | 'plasmavmc-agent' | 'prismnet' | 'coronafs'> & { state: RunState };

/** The tenant network VMs get in the smoke lane (tenants have networks of their own: no clash with others). */
const SMOKE_CIDR = '10.240.0.0/24';
/** A static route the network hands its guests (TEST-NET-1 via an on-link next hop): vm-network-binding finds it in each guest. */
export const SMOKE_ROUTE = { destination: '192.0.2.0/24', nextHop: '10.240.0.9' };

/**
 * A VM on every worker, through the APIs a tenant uses: the image imported, a tenant network with
 * a port per VM, each VM created on its worker. Each must reach its ready marker; the record says
 * which accelerator ran it (tcg inside a tcg worker unless the worker's KVM really works).
 */
export const workerVirtualization: Step<Env> = {
  name: 'worker-virtualization',
  proves:
    'an inner guest created through plasmavmc on each worker reaches its ready marker and writes to its coronafs volume (one exported by a controller, one node-local); the record says which accelerator ran it',
  needs: ['service-health'],
  run: async (ctx, step) => {
    const { iam, plasmavmc, prismnet, coronafs } = ctx.services;
    const tenants = await laneTenants(iam, ctx.state.lane);
    const left = [
      ...(await sweepTenant(tenants.a, plasmavmc, prismnet, coronafs)),
      ...(await sweepTenant(tenants.b, plasmavmc, prismnet, coronafs)),
    ];
    if (left.length) step.log.warn(`removed what an earlier run left behind: ${left.join(', ')}`);
    const a = tenants.a;
    const image = await plasmavmc.importImage(a, 'inner-guest', ctx.state.vmImage ?? plasmavmc.params.image);
    const network = await prismnet.addRoute(
      a,
      (await prismnet.createNetwork(a, `${ctx.state.lane}-${ctx.state.runId}`, SMOKE_CIDR)).id,
      SMOKE_ROUTE,
    );
    const vms: Vm[] = [];
    ctx.state.hosted = { tenant: a, other: tenants.b, image: image.id, network, vms }; // the lane's teardown removes them if a step fails
    // Both export kinds: the first VM's volume from a controller, the others' from their own worker.
    for (const [i, worker] of ctx.services['plasmavmc-agent'].nodes().entries()) {
      const port = await prismnet.createPort(a, network.id, `vm-${worker.name}`);
      const volume = await coronafs.createVolume(a, {
        name: `vol-${worker.name}`,
        sizeMiB: 16,
        ...(i === 0 ? { kind: 'controller' as const } : { kind: 'local' as const, node: worker.name }),
      });
      vms.push(
        await plasmavmc.createVm(a, {
          name: `${ctx.state.lane}-${worker.name}`,
          image: image.id,
          worker: worker.name,
          ports: [port.id],
          volumes: [volume.id],
        }),
      );
    }
    const marker = plasmavmc.params.readyMarker;
    // One VM failing ends the others' waits too.
    const abort = new AbortController();
    const ready = await Promise.all(
      vms.map((vm) =>
        plasmavmc
          .waitForConsole(a, vm, new RegExp(`${marker} vm=${vm.id} kernel=([^\\s[]+)`), marker, {
            timeoutMs: 300_000,
            afterInitMs: 30_000,
            signal: abort.signal,
            log: step.log,
          })
          .catch((e: unknown) => {
            abort.abort();
            throw e;
          }),
      ),
    );
    // Each VM writes a record to its volume (NBD from the export node) and says so.
    await Promise.all(
      vms.map((vm) =>
        plasmavmc.waitForConsole(a, vm, new RegExp(`ULTRACLOUD_INNER_VOLUME vm=${vm.id} `), 'a record written to its coronafs volume', {
          timeoutMs: 120_000,
          log: step.log,
        }),
      ),
    );
    const record = await Promise.all(
      vms.map(async (vm, i) => {
        const now = await plasmavmc.vm(a, vm.id);
        await step.evidence(`vms/${vm.worker}-${vm.id}.console.log`, await plasmavmc.console(a, vm.id));
        const disk = vm.disks[0]!;
        return {
          vm: vm.id,
          worker: vm.worker,
          accel: now.status.accel,
          kernel: ready[i]!.match[1],
          readyAfterS: ready[i]!.afterMs / 1000,
          volume: `${disk.volume} (${disk.kind}, exported by ${disk.node})`,
        };
      }),
    );
    await step.json('worker-virtualization.json', { image, network, vms: record });
    return record.map((r) => `${r.worker}: ${r.vm} ready in ${seconds(r.readyAfterS * 1000)} (${r.accel})`).join('; ');
  },
};
