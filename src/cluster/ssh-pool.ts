import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { Client, type ConnectConfig } from 'ssh2';
import { errorMessage } from '../core/errors.js';
import { ShellChannel } from './shell-channel.js';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SshTarget {
  node: string;
  port: number;
  privateKey: string;
  /** File holding the node's pinned host key ("type base64"); written at first contact. */
  hostKeyFile: string;
}

/** "ssh-ed25519 AAAA..." from ssh2's raw host key blob (string type, then the key data). */
export function hostKeyLine(blob: Buffer): string {
  const len = blob.readUInt32BE(0);
  return `${blob.subarray(4, 4 + len).toString('ascii')} ${blob.toString('base64')}`;
}

export class HostKeyMismatch extends Error {
  override name = 'HostKeyMismatch';
}

export class ExecTimeout extends Error {
  override name = 'ExecTimeout';
}

/**
 * One ssh2 connection per node, reused by every command and every forwarded port of a run
 * (spawning `ssh` per probe costs a handshake each time; see scripts/bench-ssh.js). Host keys are
 * pinned at first contact. A target is resolved again on every reconnect: a restarted guest
 * comes back on new host ports.
 */
export interface ExecOptions {
  timeoutMs?: number;
  stdin?: string | Buffer;
  /**
   * `channel` (default without stdin): the node's long-lived shell, a few ms per command, text
   * only. `session`: an sshd session of its own, for stdin, binary or very large output.
   */
  via?: 'channel' | 'session';
}

export class SshPool {
  private conns = new Map<string, Promise<Client>>();
  private channels = new Map<string, Promise<ShellChannel>>();
  private forwards = new Map<string, Promise<{ server: net.Server; port: number }>>();
  /** Set by close(): the run is over, and a wait still polling behind it must not open a connection that keeps the CLI alive. */
  private closed = false;

  async exec(t: SshTarget, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (opts.stdin === undefined && opts.via !== 'session') return this.execOnChannel(t, command, opts.timeoutMs);
    return this.execSession(t, command, opts);
  }

  /** On the node's shell channel; past the deadline the command's process group is killed through a session. */
  private async execOnChannel(t: SshTarget, command: string, timeoutMs?: number): Promise<ExecResult> {
    const ch = await this.channel(t);
    let pid: number | undefined;
    const run = ch.run(command, (p) => {
      pid = p;
    });
    if (!timeoutMs) return run;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), timeoutMs);
    });
    const r = await Promise.race([run, expired]).finally(() => clearTimeout(timer));
    if (r !== 'expired') return r;
    if (pid) await this.execSession(t, `kill -KILL -- -${pid}`, { timeoutMs: 10_000 }).catch(() => undefined);
    // A shell that does not get back to us after the kill is dropped: the next command gets a new one.
    const after = await Promise.race([
      run.then(
        () => 'back' as const,
        () => 'back' as const,
      ),
      new Promise((r) => setTimeout(r, 5000, 'stuck')),
    ]);
    if (after === 'stuck') this.dropChannel(t.node);
    throw new ExecTimeout(`${t.node}: \`${command.slice(0, 120)}\` gave no exit status within ${timeoutMs} ms (killed)`);
  }

  /** The node's long-lived shell, opened on first use and again after it closed (the node rebooted). */
  private async channel(t: SshTarget): Promise<ShellChannel> {
    const have = this.channels.get(t.node);
    const ch = have && (await have.catch(() => null));
    if (ch && !ch.isClosed) return ch;
    const opening = this.client(t).then(
      (client) =>
        new Promise<ShellChannel>((resolve, reject) =>
          client.exec('exec bash --noprofile --norc', (err, stream) => {
            if (err) return reject(new Error(`${t.node}: no shell channel: ${err.message}`));
            stream.stderr.resume();
            resolve(
              new ShellChannel({
                write: (s) => stream.write(s),
                onData: (cb) => stream.on('data', cb),
                onClose: (cb) => stream.on('close', cb),
                close: () => stream.end(),
              }),
            );
          }),
        ),
    );
    this.channels.set(t.node, opening);
    return opening;
  }

  private dropChannel(node: string): void {
    const c = this.channels.get(node);
    this.channels.delete(node);
    void c?.then(
      (ch) => ch.close(),
      () => {},
    );
  }

  private async execSession(t: SshTarget, command: string, opts: ExecOptions): Promise<ExecResult> {
    const client = await this.client(t);
    return new Promise<ExecResult>((resolve, reject) => {
      client.exec(command, (err, stream) => {
        if (err) {
          this.drop(t.node);
          return reject(new Error(`${t.node}: exec failed: ${err.message}`));
        }
        let stdout = '';
        let stderr = '';
        const timer = opts.timeoutMs
          ? setTimeout(() => {
              stream.signal('KILL'); // the remote command must not outlive its deadline
              stream.close();
              reject(new ExecTimeout(`${t.node}: \`${command.slice(0, 120)}\` gave no exit status within ${opts.timeoutMs} ms`));
            }, opts.timeoutMs)
          : undefined;
        stream.on('data', (d: Buffer) => {
          stdout += d.toString('utf8');
        });
        stream.stderr.on('data', (d: Buffer) => {
          stderr += d.toString('utf8');
        });
        stream.on('close', (code: number | null, signal?: string) => {
          clearTimeout(timer);
          resolve({ code: code ?? (signal ? 128 : 255), stdout, stderr });
        });
        if (opts.stdin !== undefined) stream.end(opts.stdin);
        else stream.end();
      });
    });
  }

  /**
   * A 127.0.0.1 port on the host that reaches `remoteHost:remotePort` as seen from inside the
   * node (ssh -L): real clients (fetch, pg, S3) speak to guest services through it. One listener
   * per destination, each connection one direct-tcpip channel on the pooled connection.
   */
  forward(node: string, resolve: () => Promise<SshTarget>, remotePort: number, remoteHost = '127.0.0.1'): Promise<number> {
    const key = `${node}|${remoteHost}|${remotePort}`;
    let f = this.forwards.get(key);
    if (!f) {
      f = new Promise((ok, fail) => {
        const server = net.createServer((sock) => {
          sock.on('error', () => sock.destroy());
          void resolve()
            .then((t) => this.client(t))
            .then((client) =>
              client.forwardOut('127.0.0.1', 0, remoteHost, remotePort, (err, ch) => {
                if (err) return sock.destroy();
                ch.on('error', () => sock.destroy());
                sock.pipe(ch).pipe(sock);
              }),
            )
            .catch(() => sock.destroy());
        });
        server.unref(); // a forward never keeps the CLI alive
        server.once('error', fail);
        server.listen(0, '127.0.0.1', () => ok({ server, port: (server.address() as net.AddressInfo).port }));
      });
      this.forwards.set(key, f);
      f.catch(() => this.forwards.delete(key));
    }
    return f.then((x) => x.port);
  }

  /** Connect once (or reuse); a failed connection is forgotten so the next call retries. */
  client(t: SshTarget, readyTimeoutMs = 20000): Promise<Client> {
    if (this.closed) return Promise.reject(new Error(`${t.node}: SSH connections are closed (the run ended)`));
    let p = this.conns.get(t.node);
    if (!p) {
      p = connect(t, readyTimeoutMs);
      this.conns.set(t.node, p);
      p.then(
        (c) => c.on('close', () => this.conns.get(t.node) === p && this.conns.delete(t.node)),
        () => this.conns.get(t.node) === p && this.conns.delete(t.node),
      );
    }
    return p;
  }

  /** Forget a node's connection (it was powered off): the next use connects again. */
  drop(node: string): void {
    this.dropChannel(node);
    const p = this.conns.get(node);
    this.conns.delete(node);
    void p?.then(
      (c) => c.end(),
      () => {},
    );
  }

  /** The end of the run: every connection closed, and no new one opened. */
  close(): void {
    this.closed = true;
    this.closeAll();
  }

  /** Every connection closed (the nodes are being stopped); the next use connects again. */
  closeAll(): void {
    for (const node of [...this.conns.keys()]) this.drop(node);
    for (const f of this.forwards.values())
      void f.then(
        (x) => x.server.close(),
        () => {},
      );
    this.forwards.clear();
  }
}

function connect(t: SshTarget, readyTimeoutMs: number): Promise<Client> {
  const pinned = existsSync(t.hostKeyFile) ? readFileSync(t.hostKeyFile, 'utf8').trim() : null;
  let mismatch: string | null = null;
  const cfg: ConnectConfig = {
    host: '127.0.0.1',
    port: t.port,
    username: 'root',
    privateKey: readFileSync(t.privateKey),
    readyTimeout: readyTimeoutMs,
    keepaliveInterval: 5000,
    keepaliveCountMax: 4,
    hostVerifier: (key: Buffer) => {
      const line = hostKeyLine(key);
      if (pinned === null) {
        writeFileSync(t.hostKeyFile, `${line}\n`);
        return true;
      }
      if (line === pinned) return true;
      mismatch = `${t.node}: host key changed (pinned ${pinned.slice(0, 40)}..., offered ${line.slice(0, 40)}...); refusing to connect`;
      return false;
    },
  };
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.once('ready', () => resolve(c));
    // ssh2 may emit 'error' more than once (and after 'ready' on a dying link): always listen.
    c.on('error', (e) =>
      reject(mismatch ? new HostKeyMismatch(mismatch) : new Error(`${t.node}: ssh 127.0.0.1:${t.port}: ${errorMessage(e)}`)),
    );
    c.connect(cfg);
  });
}
