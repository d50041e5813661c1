import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelClosed, ShellChannel, type ShellTransport } from '../../src/cluster/shell-channel.js';

/** The channel's protocol against a local bash: the same bytes an ssh2 exec stream carries. */
function localBash(): { t: ShellTransport; kill: () => void } {
  const child = spawn('bash', ['--noprofile', '--norc'], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.on('error', () => {}); // writes after the test killed it
  return {
    t: {
      write: (s) => child.stdin.write(s),
      onData: (cb) => child.stdout.on('data', cb),
      onClose: (cb) => child.on('close', cb),
      close: () => child.stdin.end(),
    },
    kill: () => child.kill('SIGKILL'),
  };
}

describe('shell channel (one long-lived bash, framed commands)', () => {
  const open: ShellChannel[] = [];
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  const channel = () => {
    const b = localBash();
    const c = new ShellChannel(b.t);
    open.push(c);
    return { c, kill: b.kill };
  };

  it('keeps exec semantics: exit code, stdout and stderr apart, each command on its own', async () => {
    const { c } = channel();
    expect(await c.run('echo out; echo err >&2; exit 3')).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    await c.run('cd /; X=1'); // no state leaks from one command into the next
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
    expect(await c.run('pwd; echo "${X:-unset}"')).toMatchObject({ code: 0, stdout: `${process.cwd()}\nunset\n` });
    expect((await c.run('exit 0')).code).toBe(0); // `exit` ends the command, not the shell
    const tricky = "printf '%s\\n' \"__UC_END x 0 0 0\" '$(not run)' 'a'\"'\"'b'";
    expect((await c.run(tricky)).stdout).toBe("__UC_END x 0 0 0\n$(not run)\na'b\n");
    expect((await c.run('head -c 300000 /dev/zero | tr "\\0" x')).stdout).toHaveLength(300_000);
  });

  it('runs commands given at once one after another, in order', async () => {
    const { c } = channel();
    const out = await Promise.all(Array.from({ length: 20 }, (_, i) => c.run(`echo ${i}`)));
    expect(out.map((o) => o.stdout.trim())).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
  });

  it("gives the command's process group so a deadline can kill it, and the shell goes on", async () => {
    const { c } = channel();
    let pid = 0;
    const slow = c.run('sleep 30 & sleep 30', (p) => {
      pid = p;
    });
    while (!pid) await new Promise((r) => setTimeout(r, 10));
    process.kill(-pid, 'SIGKILL');
    expect((await slow).code).toBe(137);
    expect(await c.run('echo alive')).toMatchObject({ stdout: 'alive\n' });
  });

  it('fails every waiting command when the shell dies', async () => {
    const { c, kill } = channel();
    await c.run('true');
    const a = c.run('sleep 30');
    const b = c.run('echo never');
    kill();
    await expect(a).rejects.toBeInstanceOf(ChannelClosed);
    await expect(b).rejects.toBeInstanceOf(ChannelClosed);
  });
});
