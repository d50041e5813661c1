import type { Node } from '../cluster/node.js';
import type { Fault } from './fault.js';

const NEMESIS = 'ultracloud-nemesis-drain-lost.service';
/** Every 200 ms, every drain in chainfire is deleted (with the lab's own chainfire client, on the local member). */
const FORGET = `const { chainfire } = require('/usr/local/lib/ultracloud/chainfire.js');
const cf = chainfire();
setInterval(async () => {
  try { for (const d of await cf.list('/ultracloud/fleet/drain/')) await cf.del(d.key); } catch {}
}, 200);`;

/**
 * A scheduler that never sees a drain: a nemesis on a control-plane node (a transient unit)
 * deletes every drain fleet-scheduler's API records, as it appears. Heal: stopped.
 */
export function drainLost(controlPlane: Node): Fault {
  return {
    kind: 'drain-lost',
    name: `drain-lost: a nemesis on ${controlPlane} deletes every fleet drain from chainfire`,
    targets: [controlPlane.name],
    invoke: async () => {
      await controlPlane.succeed(['systemd-run', `--unit=${NEMESIS}`, 'node', '-e', FORGET]);
    },
    heal: async () => {
      await controlPlane.exec(['systemctl', 'stop', NEMESIS]);
    },
  };
}
