import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Client, type ConnectConfig } from 'ssh2';
import { errorMessage } from '../core/errors.js';

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

/**
 * One ssh2 connection per node, reused by every command of a run (spawning `ssh` per probe
 * costs a handshake each time; see scripts/bench-ssh.js). Host keys are pinned at first contact.
 */
export class SshPool {
  private conns = new Map<string, Promise<Client>>();

  async exec(t: SshTarget, command: string, opts: { timeoutMs?: number; stdin?: string } = {}): Promise<ExecResult> {
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
              stream.close();
              reject(new Error(`${t.node}: \`${command.slice(0, 80)}\` timed out after ${opts.timeoutMs} ms`));
            }, opts.timeoutMs)
          : undefined;
        stream.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
        stream.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
        stream.on('close', (code: number | null, signal?: string) => {
          clearTimeout(timer);
          resolve({ code: code ?? (signal ? 128 : 255), stdout, stderr });
        });
        if (opts.stdin !== undefined) stream.end(opts.stdin);
        else stream.end();
      });
    });
  }

  /** Connect once (or reuse); a failed connection is forgotten so the next call retries. */
  client(t: SshTarget, readyTimeoutMs = 20000): Promise<Client> {
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

  drop(node: string): void {
    const p = this.conns.get(node);
    this.conns.delete(node);
    void p?.then(
      (c) => c.end(),
      () => {},
    );
  }

  closeAll(): void {
    for (const node of [...this.conns.keys()]) this.drop(node);
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
