import type { Node } from '../cluster/node.js';
import type { Fault } from './fault.js';

/**
 * A unit that does something harmful every time it starts: a drop-in adding
 * `ExecStartPre=+<command>` (as root, outside any sandbox the unit has), at runtime (gone with a
 * reboot) unless `acrossBoots` (then in /etc: a fault that acts when the node boots again). Heal:
 * the drop-in removed and systemd reloaded. `command` is the fault's own constant, never data.
 */
export function startHook(o: { kind: string; name: string; node: Node; unit: string; command: string; acrossBoots?: boolean }): Fault {
  const dropIn = `${o.acrossBoots ? '/etc' : '/run'}/systemd/system/${o.unit}.d/ultracloud-fault-${o.kind}.conf`;
  const reload = () => o.node.succeed(['systemctl', 'daemon-reload']);
  return {
    kind: o.kind,
    name: o.name,
    targets: [o.node.name],
    invoke: async () => {
      await o.node.succeed(['install', '-d', dropIn.slice(0, dropIn.lastIndexOf('/'))]);
      await o.node.succeed(['tee', dropIn], { stdin: `[Service]\nExecStartPre=+${o.command}\n`, via: 'session' });
      await reload();
    },
    heal: async () => {
      await o.node.succeed(['rm', '-f', dropIn]);
      await reload();
    },
  };
}
