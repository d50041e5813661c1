import type { Cluster } from '../cluster/cluster.js';
import { launchClusterNode } from '../cluster/lifecycle.js';
import { waitForNode } from '../cluster/readiness.js';
import { CheckFailed } from '../core/errors.js';
import { waitPidExit } from '../core/proc.js';
import { imagesById } from '../images/build.js';
import { Qmp } from '../vm/qmp.js';
import type { Fault } from './fault.js';

/** QMP `quit`: QEMU exits at once, like pulling the plug (no guest shutdown, disk keeps what it had). */
export async function powerCut(cluster: Cluster, node: string): Promise<void> {
  const pid = await cluster.pid(node);
  if (!pid) throw new CheckFailed(`${node}: cannot cut power, it is not running`);
  cluster.pool.drop(node);
  const qmp = await Qmp.connect(cluster.files(node).qmp);
  await qmp.execute('quit').catch(() => undefined); // QEMU may close before it replies
  qmp.close();
  if (!(await waitPidExit(pid, 10000))) throw new CheckFailed(`${node}: qemu pid ${pid} still alive 10 s after QMP quit`);
}

/** Boot a stopped node again on its existing disk and wait until it is ready. */
export async function powerOn(cluster: Cluster, node: string, timeoutMs = 600_000): Promise<void> {
  const rec = await cluster.record(node);
  const images = await imagesById(cluster.profile, cluster.paths, rec.image); // the build its disk sits on
  await launchClusterNode(cluster, node, { images, accel: rec.accel });
  await waitForNode(cluster, node, timeoutMs);
}

export function powerCutFault(cluster: Cluster, node: string): Fault {
  return {
    name: `power-cut ${node}`,
    targets: [node],
    invoke: () => powerCut(cluster, node),
    heal: async () => {
      if (!(await cluster.pid(node))) await powerOn(cluster, node);
    },
  };
}
