import type { Node } from '../cluster/node.js';
import type { Fault } from './fault.js';

const DROP_IN = '/run/systemd/system/deployer.service.d/ultracloud-fault-state-lost.conf';

/**
 * A deployer whose state is not durable: a runtime drop-in removes its state file before every
 * start, so a restart forgets every pre-registered machine. Heal: the drop-in removed.
 */
export function deployerStateLost(node: Node, unit: string, stateFile: string): Fault {
  const reload = () => node.succeed(['systemctl', 'daemon-reload']);
  return {
    kind: 'deployer-state-lost',
    name: `deployer-state-lost: ${unit} on ${node} starts without ${stateFile}`,
    targets: [node.name],
    invoke: async () => {
      await node.succeed(['install', '-d', DROP_IN.slice(0, DROP_IN.lastIndexOf('/'))]);
      // `+`: as root, outside the unit's DynamicUser sandbox, which cannot see the file's real path.
      await node.succeed(['tee', DROP_IN], { stdin: `[Service]\nExecStartPre=+/bin/rm -f ${stateFile}\n`, via: 'session' });
      await reload();
    },
    heal: async () => {
      await node.succeed(['rm', '-f', DROP_IN]);
      await reload();
    },
  };
}
