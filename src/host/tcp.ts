import net from 'node:net';

/** Open a TCP connection to 127.0.0.1:port from the host (a forwarded port that is not HTTP). */
export function tcpConnect(port: number, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port, timeout: timeoutMs });
    sock.once('connect', () => {
      sock.destroy();
      resolve();
    });
    sock.once('timeout', () => {
      sock.destroy();
      reject(new Error(`no connection within ${timeoutMs} ms`));
    });
    sock.once('error', reject);
  });
}
