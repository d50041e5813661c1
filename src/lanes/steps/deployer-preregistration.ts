import { readFileSync } from 'node:fs';
import type { NodeRegistration } from '../../config/install-contract.js';
import { CheckFailed } from '../../core/errors.js';
import type { DeployerClient } from '../../services/deployer.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';

/** Bodies the admin API must refuse (4xx) with the field named in its error, changing nothing. */
function badBodies(ok: NodeRegistration, runId: string): { body: Record<string, unknown>; names: RegExp }[] {
  const other = { ...ok, id: `bad-${runId}`, machine_id: `bad-machine-${runId}` };
  return [
    { body: { ...other, rack: 'r1' }, names: /rack/ },
    { body: { ...other, id: 'Not An Id' }, names: /id/ },
    { body: { ...other, class: 'no-such-class' }, names: /class/ },
    { body: { ...other, machine_id: ok.machine_id }, names: /machine/ },
  ];
}

async function refusals(deployer: DeployerClient, ok: NodeRegistration, runId: string) {
  const out = [];
  for (const { body, names } of badBodies(ok, runId)) {
    const r = await deployer.preRegister(body as NodeRegistration);
    const error = String(r.body.error ?? '');
    if (r.status < 400 || r.status >= 500 || !names.test(error))
      throw new CheckFailed(
        `deployer on ${deployer.node()} answered ${r.status} "${error}" to ${JSON.stringify(body)}: a 4xx naming ${names.source} was due`,
      );
    out.push({ body, status: r.status, error });
  }
  return out;
}

/**
 * The deployer's admin pre-registration, as the seeds' durability lane proves it: the request
 * itself is the backup artifact (written to the run dir before it is sent), the registered
 * machine survives a deployer.service restart, and the stored request replayed is `unchanged`.
 */
export const deployerPreregistration: Step<ClusterEnv<'deployer'> & { state: RunState }> = {
  name: 'deployer-preregistration',
  proves:
    "the deployer's admin pre-registration request, kept as the backup artifact, registers a machine that survives a deployer.service restart, and replays idempotently; bad bodies are 4xx naming the field and change nothing",
  needs: ['readiness'],
  run: async ({ services: { deployer }, state }, step) => {
    await deployer.ready(); // deferred: it starts once the bootstrap node's boot is done
    const node = deployer.node();
    const request: NodeRegistration = { id: `dp-${state.runId}`, machine_id: `lab-machine-${state.runId}`, class: 'lab-worker' };
    await step.json('deployer-preregister-request.json', request);

    step.phase('pre-register');
    const first = await deployer.preRegister(request);
    if (first.status !== 201)
      throw new CheckFailed(`deployer on ${node}: pre-registering ${request.id} answered ${first.status}: ${JSON.stringify(first.body)}`);

    step.phase('bad input');
    const before = await deployer.list();
    const refused = await refusals(deployer, request, state.runId);
    const unchanged = JSON.stringify(await deployer.list()) === JSON.stringify(before);
    await step.json('deployer-bad-input.json', { refused, stateUnchanged: unchanged });
    if (!unchanged) throw new CheckFailed(`deployer on ${node}: refused bodies changed its node list`);

    step.phase('restart');
    await node.succeed(['systemctl', 'restart', deployer.unit], { timeoutMs: 200_000 });
    const listed = await deployer.list();
    await step.json('deployer-post-restart-list.json', listed);
    const kept = listed[request.id];
    if (!kept || JSON.stringify(kept.registration) !== JSON.stringify(request)) {
      const file = await node.exec(['stat', '-c', '%s bytes, modified %y', deployer.stateFile]);
      throw new CheckFailed(
        `deployer on ${node}: after ${deployer.unit} restarted, ${request.id} is ${kept ? `changed: ${JSON.stringify(kept.registration)}` : 'gone'} from its list of ${Object.keys(listed).length} node(s): its state did not survive the restart (${deployer.stateFile}: ${file.code === 0 ? file.stdout.trim() : 'missing'})`,
      );
    }

    step.phase('replay');
    const stored = JSON.parse(readFileSync(step.evidencePath('deployer-preregister-request.json'), 'utf8')) as NodeRegistration;
    const again = await deployer.preRegister(stored);
    const after = await deployer.list();
    const same = Object.values(after).filter((n) => n.registration.machine_id === request.machine_id);
    await step.json('deployer-replay.json', { status: again.status, body: again.body, nodesWithMachine: same.length });
    if (again.status !== 200 || again.body.result !== 'unchanged' || same.length !== 1 || same[0]!.registeredAt !== kept.registeredAt)
      throw new CheckFailed(
        `deployer on ${node}: replaying the stored request answered ${again.status} ${JSON.stringify(again.body)}, ${same.length} node(s) now hold machine ${request.machine_id}: the replay was not idempotent`,
      );
    return `${request.id} pre-registered, kept across a restart of ${deployer.unit} on ${node}, replayed as unchanged; ${refused.length} bad bodies refused naming their field`;
  },
};
