import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { renderEnvFile, shellCommand, shellQuote } from '../../src/core/shell.js';

const NASTY = ["it's", 'a b', '$(touch /tmp/pwned)', '`id`', '"q"', 'x;y', 'a\nb', '*', '', '\\', "'"];

describe('the shell quoting helper', () => {
  it('passes every argv word through a real sh unchanged (no expansion, no splitting)', async () => {
    const r = await execa('sh', ['-c', `printf '%s\\0' ${shellCommand(NASTY)}`]);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(NASTY);
  });

  it('quotes one value, and renders env files a shell can source', async () => {
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    const file = renderEnvFile({ A: "it's", B: '$(x) y' });
    const r = await execa('sh', ['-c', `${file}printf '%s|%s' "$A" "$B"`]);
    expect(r.stdout).toBe("it's|$(x) y");
  });

  it('refuses an empty argv', () => {
    expect(() => shellCommand([])).toThrow(RangeError);
  });
});
