import type { Node } from '../cluster/node.js';
import type { Fault } from './fault.js';

const NEMESIS = 'ultracloud-nemesis-iam-retired-key-kept.service';
const KEYS = '/ultracloud/iam/keys/';
/** As each key is retired, its verify window is struck out (the lab's own chainfire client, on the local member). */
const KEEP = `const { chainfire } = require('/usr/local/lib/ultracloud/chainfire.js');
const cf = chainfire();
const keep = async () => {
  try { for (const k of await cf.list('${KEYS}')) if (k.value.verifyUntil) { const { verifyUntil, ...kept } = k.value; await cf.put(k.key, kept); } } catch {}
};
cf.watch(['${KEYS}'], keep);
setInterval(keep, 1000);`;
/** Heal: a retired key that lost its window gets one that ended when it was retired. */
const REPAIR = `const { chainfire } = require('/usr/local/lib/ultracloud/chainfire.js');
const cf = chainfire();
(async () => {
  for (const k of await cf.list('${KEYS}')) if (k.value.retiredAt && !k.value.verifyUntil) await cf.put(k.key, { ...k.value, verifyUntil: k.value.retiredAt });
})().catch((e) => { console.error(e.message); process.exit(1); });`;

/**
 * A signing-key rotation that keeps the old key valid: a nemesis on a control-plane node (a
 * transient unit) removes the verify window from every retired key as it is written, so tokens
 * of the old key verify forever. Heal: the nemesis stopped, each such key's window closed.
 */
export function iamRetiredKeyKept(node: Node): Fault {
  return {
    kind: 'iam-retired-key-kept',
    name: `iam-retired-key-kept: a nemesis on ${node} strikes the verify window of every retired iam key`,
    targets: [node.name],
    invoke: async () => {
      await node.succeed(['systemd-run', `--unit=${NEMESIS}`, 'node', '-e', KEEP]);
    },
    heal: async () => {
      await node.exec(['systemctl', 'stop', NEMESIS]);
      await node.succeed(['node', '-e', REPAIR], { timeoutMs: 60_000 });
    },
  };
}
