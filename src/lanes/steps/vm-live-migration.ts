import type { Node } from '../../cluster/node.js';
import { CheckFailed, errorMessage } from '../../core/errors.js';
import { waitFor } from '../../core/retry.js';
import { volumeUnreachable } from '../../faults/volume-unreachable.js';
import { http } from '../../probes/http.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';

type Env = ClusterEnv<'plasmavmc' | 'plasmavmc-agent' | 'prismnet' | 'coronafs'> & { state: RunState };

/** How often the VM is asked for its page while it migrates (a Jepsen-style history of what it served). */
const SAMPLE_EVERY_MS = 250;
/** How long it is still sampled once the API says the migration completed. */
const SAMPLE_AFTER_MS = 5000;

/** The worker a VM on `worker` migrates to: the next one. */
function otherWorker(workers: readonly Node[], worker: string): string {
  const others = workers.filter((w) => w.name !== worker);
  if (!others.length) throw new CheckFailed(`live migration needs two workers; only ${worker} runs plasmavmc-agent`);
  return others[0]!.name;
}

interface Sample {
  atMs: number;
  ok: boolean;
  answer: string;
}

/**
 * PlasmaVMC live migration as a tenant asks for it, with the storage and network handoff: the
 * lane's first VM moves to the other worker while the DHCP worker keeps asking it for its page. After
 * the move the VM runs on the target (its unit gone from the source), its port is bound there (tap
 * on the target's bridge, not on the source's), its volume still attached to it and exported from
 * the same place, and it answers again. QEMU's figures and every sampled request go into
 * `vm-hosting/migration-summary.json`.
 */
/** The step, after the one that boots the lane's VMs (`--only vm-live-migration` keeps it). */
export const vmLiveMigration = (hostedBy: string): Step<Env> => ({
  name: 'vm-live-migration',
  proves:
    "the lane's first VM migrates live to the other worker through plasmavmc: afterwards it runs there and its unit is gone from the source, its prismnet port is bound on the target (tap moved), its coronafs volume is still attached and exported from the same place, and it answers HTTP again; the requests sampled during the move, QEMU's downtime and the handoff state are recorded",
  needs: [hostedBy],
  run: async ({ services, cluster, state }, step) => {
    const { plasmavmc, prismnet, coronafs } = services;
    const hosted = state.hosted;
    if (!hosted) throw new CheckFailed('no VM to migrate (the lane boots one first)');
    const { tenant: a, network: net, vms } = hosted;
    const vm = vms[0]!;
    const target = otherWorker(services['plasmavmc-agent'].nodes(), vm.worker);
    const nic = vm.nics[0]!;
    const disk = vm.disks[0]!;
    const via = cluster.node(net.dhcpWorker);
    const url = `${await via.url(80, nic.ip)}/`;
    const ask = async (): Promise<string> => {
      const r = await http('GET', url, { timeoutMs: 2000 });
      return `${r.status} ${r.text.trim()}`;
    };
    const before = {
      worker: vm.worker,
      port: (await prismnet.port(a, nic.port)).binding,
      volume: await coronafs.volume(a, disk.volume),
      answer: await ask(),
    };
    if (!before.answer.includes(vm.id)) throw new CheckFailed(`vm ${vm.id} does not answer before the migration: ${before.answer}`);

    step.phase('migrate');
    const samples: Sample[] = [];
    const t0 = performance.now();
    let done: number | null = null;
    const sampling = (async () => {
      while (done === null || performance.now() - done < SAMPLE_AFTER_MS) {
        const atMs = Math.round(performance.now() - t0);
        const answer = await ask().catch((e: unknown) => errorMessage(e));
        samples.push({ atMs, ok: answer.includes(vm.id), answer: answer.slice(0, 120) });
        await new Promise((r) => setTimeout(r, SAMPLE_EVERY_MS));
      }
    })();
    const summary: Record<string, unknown> = { vm: vm.id, from: vm.worker, to: target, before };
    try {
      const moved = await plasmavmc.migrate(a, vm.id, target).finally(() => {
        done = performance.now();
      });
      summary.migrated = moved.migrated;
      await sampling;

      step.phase('handoff');
      const after = {
        worker: (await plasmavmc.vm(a, vm.id)).worker,
        port: (await prismnet.port(a, nic.port)).binding,
        volume: await coronafs.volume(a, disk.volume),
        tapOnSource: (await prismnet.tapsOn(cluster.node(vm.worker))).includes(nic.tap),
        tapOnTarget: (await prismnet.tapsOn(cluster.node(target))).includes(nic.tap),
        unitOnSource: (await plasmavmc.vmUnits(cluster.node(vm.worker))).includes(vm.id),
      };
      summary.after = after;
      const wrong: string[] = [];
      if (after.worker !== target) wrong.push(`plasmavmc places it on ${after.worker}`);
      if (after.port?.worker !== target) wrong.push(`its port ${nic.port} is bound on ${after.port?.worker ?? 'nothing'}`);
      if (!after.tapOnTarget) wrong.push(`tap ${nic.tap} is not on ${target}`);
      if (after.tapOnSource) wrong.push(`tap ${nic.tap} is still on ${vm.worker}`);
      if (after.unitOnSource) wrong.push(`its unit still runs on ${vm.worker}`);
      if (after.volume.attachedTo !== vm.id) wrong.push(`volume ${disk.volume} is attached to ${after.volume.attachedTo ?? 'nothing'}`);
      if (after.volume.host !== before.volume.host || after.volume.port !== before.volume.port)
        wrong.push(
          `volume ${disk.volume} moved from ${before.volume.host}:${before.volume.port} to ${after.volume.host}:${after.volume.port}`,
        );
      if (wrong.length) throw new CheckFailed(`after migrating vm ${vm.id} from ${vm.worker} to ${target}: ${wrong.join('; ')}`);
      await waitFor(`vm ${vm.id} answers from ${target}`, { timeoutMs: 30_000, intervalMs: 500 }, async () => {
        const got = await ask();
        if (!got.includes(vm.id)) throw new Error(got);
      });
      const failed = samples.filter((s) => !s.ok);
      summary.requests = { sent: samples.length, answered: samples.length - failed.length, failed: failed.length };
      const m = moved.migrated;
      return `vm ${vm.id} ${vm.worker} -> ${target} in ${(m.wallMs / 1000).toFixed(1)} s (QEMU ${m.qemuTotalMs} ms, downtime ${m.downtimeMs} ms, ${m.ramBytes} B); port and tap moved, volume ${disk.volume} still attached from ${after.volume.host}; ${samples.length - failed.length}/${samples.length} requests answered during the move`;
    } finally {
      done ??= performance.now();
      await sampling;
      summary.samples = samples;
      await step.json('vm-hosting/migration-summary.json', summary);
    }
  },
});

/** The negative control: the migration target drops new connections to the migrating VM's volume export. */
export const volumeUnreachableFromTarget = {
  description: "drop the migration target's connections to the migrating VM's volume export",
  breaks: 'vm-live-migration',
  fault: ({ cluster, services, state }: Env) => {
    const vm = state.hosted?.vms[0];
    if (!vm) throw new CheckFailed('no VM to take the volume of (the lane boots one first)');
    return volumeUnreachable(cluster.node(otherWorker(services['plasmavmc-agent'].nodes(), vm.worker)), vm.disks[0]!);
  },
} as const;
