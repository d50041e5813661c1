import net from 'node:net';

/** Ask the kernel for a free 127.0.0.1 port; QEMU binds it a moment later (a lost race is retried by the launcher). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** `count` distinct free ports, none of them in `avoid` (ports already recorded for running nodes). */
export async function allocatePorts(count: number, avoid: Set<number> = new Set()): Promise<number[]> {
  const out: number[] = [];
  for (let tries = 0; out.length < count; tries++) {
    if (tries > count * 20) throw new Error(`could not find ${count} free loopback ports`);
    const p = await freePort();
    if (!avoid.has(p) && !out.includes(p)) out.push(p);
  }
  return out;
}

/** True when something listens on 127.0.0.1:port. */
export function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(true));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(false)));
  });
}
