import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { wantColor } from '../../src/core/log.js';
import { BIN, cli, REPO } from '../helpers/cli.js';

describe('CLI hygiene', () => {
  it('--version prints the package version; --help shows examples and the exit codes', async () => {
    const v = await cli(['--version']);
    expect(v.exitCode).toBe(0);
    expect(v.stdout.trim()).toBe(JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')).version);
    const h = await cli(['--help']);
    expect(h.exitCode).toBe(0);
    expect(h.stdout).toMatch(/Examples:\n {2}ultracloud fresh-smoke /);
    expect(h.stdout).toContain('Exit codes: 0 passed, 1 a check failed, 2 bad usage or input (nothing changed), 130/143 interrupted');
  });

  it('under --json an error is a JSON object on stdout, for bad input and for bad usage alike', async () => {
    const input = await cli(['--json', 'smoke', '--only', 'readines']);
    expect(input.exitCode).toBe(2);
    expect(JSON.parse(input.stdout)).toEqual({
      ok: false,
      error: expect.stringContaining('--only readines: no such step in smoke'),
      exitCode: 2,
    });
    const usage = await cli(['--json', 'smoke', '--bogus']);
    expect(usage.exitCode).toBe(2);
    expect(JSON.parse(usage.stdout)).toEqual({ ok: false, error: expect.stringContaining("unknown option '--bogus'"), exitCode: 2 });
  });

  it('NO_COLOR turns colour off, FORCE_COLOR on, a terminal decides otherwise', () => {
    expect(wantColor({}, true)).toBe(true);
    expect(wantColor({}, false)).toBe(false);
    expect(wantColor({ NO_COLOR: '1' }, true)).toBe(false);
    expect(wantColor({ FORCE_COLOR: '1' }, false)).toBe(true);
    expect(wantColor({ FORCE_COLOR: '0' }, true)).toBe(true);
  });

  it("completion bash: a script bash loads, completing commands and each command's options", async () => {
    const r = await cli(['completion', 'bash']);
    expect(r.exitCode).toBe(0);
    const script = path.join(mkdtempSync(path.join(os.tmpdir(), 'uc-compl-')), 'c.bash');
    writeFileSync(script, r.stdout);
    const complete = async (line: string) => {
      const words = line.split(' ');
      const probe = `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _ultracloud; printf '%s\\n' "\${COMPREPLY[@]}"`;
      return (await execa('bash', ['-c', probe])).stdout.split('\n');
    };
    expect(await complete('ultracloud fresh-s')).toEqual(['fresh-smoke', 'fresh-serve-vm-webapp']);
    expect(await complete('ultracloud smoke --in')).toEqual(['--inject']);
    expect(await complete('ultracloud hardware-smoke ca')).toEqual(['capture']);
    expect(await complete('ultracloud ssh node0')).toHaveLength(6);
    expect((await cli(['completion', 'zsh'])).stdout).toMatch(/^autoload -U \+X bashcompinit && bashcompinit\n/);
  });

  it('in GitHub Actions every step is a group, a failing step an error annotation, and the summary lands on the job page', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'uc-gha-'));
    const log = path.join(dir, 'short.log');
    writeFileSync(log, 'ULTRACLOUD_MARKER pre-install-boot\n');
    const summary = path.join(dir, 'summary.md');
    const r = await execa('node', [BIN, '--work-root', dir, 'hardware-smoke', 'capture', '--log', log], {
      cwd: REPO,
      reject: false,
      env: { ...process.env, GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summary },
    });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/::group::hardware-smoke: markers\n[\s\S]*::endgroup::\n/);
    expect(r.stderr).toMatch(/::error title=hardware-smoke: markers::machine: the log ends before phone-home-ok/);
    expect(readFileSync(summary, 'utf8')).toMatch(/^# hardware-smoke capture .*: FAILED/);
  });

  it('`start --nodes ,` names no node: exit 2 before anything is built', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'uc-nodes-'));
    const r = await cli(['--work-root', work, 'start', '--nodes', ',']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('--nodes names no node');
  });

  it('credentials inside --iso-url or --bmc never reach the evidence', async () => {
    const { redactCredentials } = await import('../../src/core/redact.js');
    expect(redactCredentials('--bmc https://admin:hunter2@bmc.example/redfish')).toBe('--bmc https://***:***@bmc.example/redfish');
    expect(redactCredentials('http://files.example/uc.iso')).toBe('http://files.example/uc.iso');
    const work = mkdtempSync(path.join(os.tmpdir(), 'uc-redact-'));
    const r = await cli([
      '--work-root',
      work,
      '--json',
      'hardware-smoke',
      'preflight',
      '--transport',
      'redfish',
      '--iso-url',
      'http://user:s3cret@files.example/uc.iso',
      '--bmc',
      'https://root:t0psecret@bmc.example',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const transport = readFileSync(path.join(JSON.parse(r.stdout).dir, 'transport.json'), 'utf8');
    expect(transport).toContain('***');
    expect(transport).not.toMatch(/s3cret|t0psecret/);
    expect(r.stdout + r.stderr).not.toMatch(/s3cret|t0psecret/);
  }, 120_000);
});
