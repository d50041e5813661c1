import type { Node } from '../cluster/node.js';
import type { Fault } from './fault.js';

const NEMESIS = 'ultracloud-nemesis-object-rot.service';
/** Every 300 ms: each object file (.data) written since the nemesis started gets the byte in its middle inverted, once. */
const ROT = `const fs = require('fs'), path = require('path');
const root = '/srv/node/d1/objects', since = Date.now(), done = new Set();
const walk = (d, out) => {
  let es; try { es = fs.readdirSync(d, { withFileTypes: true }); } catch { return out; }
  for (const e of es) { const p = path.join(d, e.name); if (e.isDirectory()) walk(p, out); else if (e.name.endsWith('.data')) out.push(p); }
  return out;
};
setInterval(() => {
  for (const f of walk(root, [])) {
    if (done.has(f)) continue;
    let st; try { st = fs.statSync(f); } catch { continue; }
    if (st.mtimeMs < since || st.size < 1024) continue;
    const fd = fs.openSync(f, 'r+'), at = Math.floor(st.size / 2), b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at); b[0] ^= 0xff; fs.writeSync(fd, b, 0, 1, at); fs.closeSync(fd);
    done.add(f); console.log('inverted the byte at ' + at + ' of ' + f);
  }
}, 300);`;

/**
 * Bit rot in one object replica: a nemesis on `node` (a transient unit) inverts one byte in the
 * middle of every object file written there from now on; the other replica stays whole. Heal:
 * the nemesis stopped (a rotted replica is Swift's to quarantine, and the lane deletes its bucket).
 */
export function objectReplicaCorrupted(node: Node): Fault {
  return {
    kind: 'object-replica-corrupted',
    name: `object-replica-corrupted: every object file written on ${node} gets one byte inverted`,
    targets: [node.name],
    invoke: async () => {
      await node.succeed(['systemd-run', `--unit=${NEMESIS}`, 'node', '-e', ROT]);
    },
    heal: async () => {
      await node.exec(['systemctl', 'stop', NEMESIS]);
    },
  };
}
