import type { Node } from '../cluster/node.js';
import type { ServiceClient } from '../services/service.js';
import type { Fault } from './fault.js';

const NEMESIS = 'ultracloud-nemesis-object-data.service';

/**
 * Both replicas of every object lost: the object server stopped on one worker, and on the other a
 * nemesis (a transient unit) deleting every object file as it lands. Writes are accepted (one
 * replica is a quorum of two); reads find nothing. Heal: the nemesis stopped, the server started.
 */
export function objectDataLost(objects: ServiceClient<unknown>, stopped: Node, wiped: Node): Fault {
  return {
    kind: 'object-data-lost',
    name: `object-data-lost: ${objects.unit} stopped on ${stopped}, object files deleted on ${wiped}`,
    targets: [stopped.name, wiped.name],
    invoke: async () => {
      await stopped.succeed(['systemctl', 'stop', objects.unit]);
      await wiped.succeed([
        'systemd-run',
        `--unit=${NEMESIS}`,
        '/bin/sh',
        '-c',
        "while :; do find /srv/node/d1/objects -name '*.data' -delete 2>/dev/null; sleep 0.5; done",
      ]);
    },
    heal: async () => {
      await wiped.exec(['systemctl', 'stop', NEMESIS]);
      await stopped.succeed(['systemctl', 'start', objects.unit], { timeoutMs: 300_000 });
      await stopped.waitForUnit(objects.unit);
    },
  };
}
