import { randomBytes } from 'node:crypto';
import type { ExecResult } from './ssh-pool.js';

/**
 * One long-lived bash per node (the NixOS test driver's backdoor shell), so a probe does not pay
 * sshd's per-command session (a fork, PAM, a login shell: ~70 ms under TCG) but one subshell
 * fork. Each command runs in its own subshell and process group with stdin from /dev/null and
 * stdout/stderr captured to files; the shell then frames the exit code and both outputs. Exec
 * semantics are unchanged: exit code, stdout, stderr, and a deadline that kills the command's
 * whole process group. Text only: bash variables cannot hold NUL bytes.
 */
export interface ShellTransport {
  write(text: string): void;
  onData(cb: (chunk: Buffer) => void): void;
  onClose(cb: () => void): void;
  close(): void;
}

/** Defines `__uc`, which runs `$__c` and prints `__UC_PID id pid` then `__UC_END id rc outBytes errBytes` and the bytes. */
const PRELUDE = `export LC_ALL=C; set -m; umask 077
__d=$(mktemp -d /dev/shm/uc-chan.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$__d"' EXIT
__uc() {
  ( eval "$__c" ) </dev/null >"$__d/o" 2>"$__d/e" &
  local p=$!
  printf '__UC_PID %s %d\\n' "$1" "$p"
  wait "$p"; local rc=$? o e
  IFS= read -r -d '' o <"$__d/o"; IFS= read -r -d '' e <"$__d/e"
  printf '__UC_END %s %d %d %d\\n%s%s' "$1" "$rc" "\${#o}" "\${#e}" "$o" "$e"
}
printf '__UC_READY\\n'
`;

interface Pending {
  id: string;
  resolve: (r: ExecResult) => void;
  reject: (e: Error) => void;
  onPid?: (pid: number) => void;
}

export class ChannelClosed extends Error {
  override name = 'ChannelClosed';
}

export class ShellChannel {
  private buf = Buffer.alloc(0);
  private readonly waiting: { start: () => void; reject: (e: Error) => void }[] = [];
  private current: Pending | null = null;
  private closed = false;
  private readonly ready: Promise<void>;
  private onReady!: () => void;

  constructor(private readonly t: ShellTransport) {
    this.ready = new Promise((resolve, reject) => {
      this.onReady = resolve;
      t.onClose(() => {
        this.closed = true;
        const gone = new ChannelClosed('the shell channel closed');
        reject(gone);
        this.current?.reject(gone);
        this.current = null;
        for (const w of this.waiting.splice(0)) w.reject(gone);
      });
    });
    this.ready.catch(() => {});
    t.onData((c) => this.onData(c));
    t.write(PRELUDE);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Run one command (queued behind any running one). `onPid` learns the command's process
   * group, so a caller past its deadline can kill it through another session.
   */
  async run(command: string, onPid?: (pid: number) => void): Promise<ExecResult> {
    await this.ready;
    return new Promise<ExecResult>((resolve, reject) => {
      const id = randomBytes(6).toString('hex');
      const start = () => {
        if (this.closed) return reject(new ChannelClosed('the shell channel is closed'));
        this.current = { id, resolve, reject, onPid };
        this.t.write(`IFS= read -r -d '' __c <<'__UC_EOC_${id}'\n${command}\n__UC_EOC_${id}\n__uc ${id}\n`);
      };
      if (this.current) this.waiting.push({ start, reject });
      else start();
    });
  }

  close(): void {
    this.closed = true;
    this.t.close();
  }

  private onData(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      const nl = this.buf.indexOf(10);
      if (nl < 0) return;
      const line = this.buf.subarray(0, nl).toString('utf8');
      const end = /^__UC_END ([0-9a-f]+) (\d+) (\d+) (\d+)$/.exec(line);
      if (!end) {
        this.buf = this.buf.subarray(nl + 1);
        const pid = /^__UC_PID ([0-9a-f]+) (\d+)$/.exec(line);
        if (line === '__UC_READY') this.onReady();
        else if (pid && this.current && this.current.id === pid[1]) this.current.onPid?.(Number(pid[2]));
        continue; // anything else is the shell's own noise (job notices), not a frame
      }
      const [lo, le] = [Number(end[3]), Number(end[4])];
      if (this.buf.length < nl + 1 + lo + le) return; // the rest of the frame is still on its way
      const body = this.buf.subarray(nl + 1, nl + 1 + lo + le);
      this.buf = this.buf.subarray(nl + 1 + lo + le);
      const cur = this.current;
      this.current = null;
      if (cur && cur.id === end[1])
        cur.resolve({ code: Number(end[2]), stdout: body.subarray(0, lo).toString('utf8'), stderr: body.subarray(lo).toString('utf8') });
      this.waiting.shift()?.start();
    }
  }
}
