import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

/**
 * A command that leaves a handle open by mistake must still end, with the command's exit code and
 * a line naming what held it (the CLI's action wrapper, compiled, in a child process).
 */
const command = (leak: boolean) => `
import { Command } from 'commander';
import { action } from ${JSON.stringify(path.join(REPO, 'dist/commands/context.js'))};
await new Command()
  .option('--log-level <level>', '', 'warn')
  .action(action(async () => { ${leak ? 'setInterval(() => {}, 1000);' : ''} return 4; }))
  .parseAsync(['node', 'cmd']);
`;
const run = (leak: boolean) => execa('node', ['--input-type=module', '-e', command(leak)], { reject: false, cwd: REPO, timeout: 30_000 });

describe('a command that leaves a handle open', () => {
  it('exits with its own code after the grace, naming the handle', async () => {
    const t0 = Date.now();
    const r = await run(true);
    expect(r.exitCode).toBe(4);
    expect(Date.now() - t0).toBeGreaterThan(9000);
    expect(String(r.stderr)).toMatch(/held open by: .*Timeout/);
  }, 40_000);

  it('without a leak, exits at once and says nothing of it', async () => {
    const t0 = Date.now();
    const r = await run(false);
    expect(r.exitCode).toBe(4);
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(String(r.stderr)).not.toMatch(/held open/);
  }, 40_000);
});
