import net from 'node:net';

/** A minimal QMP client: greeting, qmp_capabilities, then commands; resolves `closed` when QEMU exits. */
export class Qmp {
  private buf = '';
  private pending: { resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  readonly closed: Promise<void>;

  private constructor(private readonly sock: net.Socket) {
    this.closed = new Promise((resolve) => sock.once('close', () => resolve()));
    sock.on('data', (d) => this.onData(d.toString('utf8')));
    sock.on('close', () => {
      for (const p of this.pending.splice(0)) p.reject(new Error('QMP socket closed'));
    });
  }

  static connect(socketPath: string, timeoutMs = 5000): Promise<Qmp> {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection(socketPath);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`QMP ${socketPath}: no greeting within ${timeoutMs} ms`));
      }, timeoutMs);
      sock.once('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`QMP ${socketPath}: ${e.message}`));
      });
      const q = new Qmp(sock);
      // The greeting counts as the first "reply"; then negotiate capabilities.
      q.pending.push({
        resolve: () => {
          clearTimeout(timer);
          q.execute('qmp_capabilities').then(() => resolve(q), reject);
        },
        reject,
      });
    });
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.sock.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    });
  }

  close(): void {
    this.sock.destroy();
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    for (let i = this.buf.indexOf('\n'); i >= 0; i = this.buf.indexOf('\n')) {
      const line = this.buf.slice(0, i).trim();
      this.buf = this.buf.slice(i + 1);
      if (!line) continue;
      const msg = JSON.parse(line) as { QMP?: unknown; event?: string; return?: unknown; error?: { desc: string } };
      if (msg.event) continue;
      const p = this.pending.shift();
      if (!p) continue;
      if (msg.error) p.reject(new Error(`QMP error: ${msg.error.desc}`));
      else p.resolve(msg.QMP ?? msg.return);
    }
  }
}

/** Poll `query-migrate` until the migration (outgoing or incoming) completes; its failure reason otherwise. */
export async function waitMigration(qmp: Qmp, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = (await qmp.execute('query-migrate')) as { status?: string; 'error-desc'?: string };
    if (m.status === 'completed') return;
    if (m.status === 'failed' || m.status === 'cancelled')
      throw new Error(`${what}: migration ${m.status}${m['error-desc'] ? `: ${m['error-desc']}` : ''}`);
    if (Date.now() > deadline)
      throw new Error(`${what}: migration still ${m.status ?? 'not started'} after ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
