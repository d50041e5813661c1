import type { Node } from '../cluster/node.js';
import type { Fault } from './fault.js';

const NEMESIS = 'ultracloud-nemesis-drain-ignored.service';
/** Every 200 ms, any server haproxy holds in drain is set ready again through its runtime API. */
const UNDRAIN = `const r = require('/usr/local/lib/ultracloud/haproxy-runtime.js');
setInterval(async () => {
  try { for (const [s, v] of Object.entries(await r.adminStates())) if (v === 'drain') await r.setState(s, 'ready'); } catch {}
}, 200);`;

/**
 * A balancer whose backends never drain: a nemesis on the gateway (a transient unit) sets every
 * drained haproxy server ready again, behind fiberlb's API, which still says drain. Heal: stopped.
 */
export function drainIgnored(gateway: Node): Fault {
  return {
    kind: 'drain-ignored',
    name: `drain-ignored: haproxy on ${gateway} keeps drained servers ready`,
    targets: [gateway.name],
    invoke: async () => {
      await gateway.succeed(['systemd-run', `--unit=${NEMESIS}`, 'node', '-e', UNDRAIN]);
    },
    heal: async () => {
      await gateway.exec(['systemctl', 'stop', NEMESIS]);
    },
  };
}
