// A QMP session over a VM's unix socket: greeting, capabilities, then one command at a time.
'use strict';
const net = require('node:net');

function qmpSession(socketPath, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    let buf = '';
    const waiting = [];
    const timer = setTimeout(() => sock.destroy(new Error(`QMP ${socketPath}: no greeting within ${timeoutMs} ms`)), timeoutMs);
    sock.on('error', (e) => {
      reject(e);
      for (const w of waiting.splice(0)) w.reject(e);
    });
    sock.on('data', (d) => {
      buf += d;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        if (msg.QMP) {
          clearTimeout(timer);
          sock.write('{"execute":"qmp_capabilities"}\n');
          waiting.push({ resolve: () => resolve(session), reject });
        } else if ('return' in msg || 'error' in msg) {
          const w = waiting.shift();
          if (!w) continue;
          if (msg.error) w.reject(new Error(`QMP: ${msg.error.desc}`));
          else w.resolve(msg.return);
        }
      }
    });
    const session = {
      execute: (command, args) =>
        new Promise((ok, fail) => {
          waiting.push({ resolve: ok, reject: fail });
          sock.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) })}\n`);
        }),
      close: () => sock.end(),
    };
  });
}

module.exports = { qmpSession };
