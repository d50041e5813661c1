import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunRecord } from '../../src/core/run-record.js';
import { FaultHistory } from '../../src/faults/fault.js';
import { hostFacts } from '../../src/host/facts.js';
import { launchBrowser } from '../../src/probes/browser.js';
import { cli } from '../helpers/cli.js';

/** A finished run with every part a report shows: steps of each status, a node boot timeline, a negative control. */
async function sampleRun(): Promise<{ dir: string; work: string }> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'uc-report-'));
  const rec = await RunRecord.create({
    workRoot: work,
    lane: 'smoke',
    command: 'fresh-smoke --inject unit-masked',
    profile: 'lab',
    host: hostFacts('tcg'),
  });
  const faults = new FaultHistory(rec);
  await rec.step('image', async () => 'image abc reused in 0.0 s');
  await rec.step('boot', async (s) => {
    const t = Date.now();
    await s.json('boot.json', {
      mode: 'cold',
      nodes: {
        node01: { launchedAt: new Date(t - 2000).toISOString(), readyAt: new Date(t - 500).toISOString() },
        node02: { launchedAt: new Date(t - 2000).toISOString(), readyAt: new Date(t).toISOString() },
      },
    });
    return '2 nodes booted';
  });
  rec.setBoot({ mode: 'cold' });
  const fault = {
    kind: 'unit-masked',
    name: 'unit-masked iam.service on node02',
    targets: ['node02'],
    invoke: async () => undefined,
    heal: async () => undefined,
  };
  await rec
    .step('readiness', async () => {
      await faults.invoke(fault, { negativeControl: 'unit-masked', breaks: 'readiness' });
      throw new Error(
        'node02: expected unit(s) cannot start: iam.service is masked\n--- console tail ---\nlogin: <script>alert(1)</script>',
      );
    })
    .catch(() => undefined);
  rec.skip('control-plane-formation', 'skipped: step readiness failed', 'failure');
  await faults.healAll();
  rec.event('warning', "node03: clock 2.5 s off the host's", { evidence: 'date' });
  await rec.finish();
  return { dir: rec.dir, work };
}

describe('run reports', () => {
  it('summary.md lists the steps, the failure, the boot, faults and heals, the negative control, warnings and evidence', async () => {
    const { dir } = await sampleRun();
    const md = readFileSync(path.join(dir, 'summary.md'), 'utf8');
    expect(md).toMatch(/^# fresh-smoke --inject unit-masked: FAILED/);
    expect(md).toContain('| 3 | readiness | FAILED |');
    expect(md).toContain('| 4 | control-plane-formation | skipped |');
    expect(md).toMatch(/## Failure: readiness\n\n```\nnode02: expected unit\(s\) cannot start: iam\.service is masked/);
    expect(md).toMatch(/\| node02 \| .* \| 2\.0 s \|/);
    expect(md).toContain('- `--inject unit-masked` must break `readiness`: it did; healed: healed');
    expect(md).toContain("- node03: clock 2.5 s off the host's");
    expect(md).toMatch(/- boot\.json\n/);
  });

  it('report.html renders in a real headless browser: every step, the timeline, no script from a console tail runs; a screenshot is saved', async () => {
    const { dir } = await sampleRun();
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const dialogs: string[] = [];
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(`file://${path.join(dir, 'report.html')}`);
      expect(await page.title()).toBe('fresh-smoke --inject unit-masked: failed');
      expect(await page.locator('#status').textContent()).toBe('FAILED');
      expect(await page.locator('tr.step').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-step')))).toEqual([
        'image',
        'boot',
        'readiness',
        'control-plane-formation',
      ]);
      expect(await page.locator('tr.step.failed pre').textContent()).toContain('iam.service is masked');
      // Bars: three steps that ran, two node boots, one fault.
      expect(await page.locator('svg rect.bar').count()).toBe(6);
      expect(dialogs).toEqual([]); // the console tail's <script> stayed text
      expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]); // self-contained
      await page.screenshot({ path: path.join(dir, 'report.png'), fullPage: true });
    } finally {
      await browser.close();
    }
    expect(statSync(path.join(dir, 'report.png')).size).toBeGreaterThan(10_000);
  }, 60_000);

  it("`ultracloud report` prints the newest run's summary; a dir that is not a run is exit 2", async () => {
    const { dir, work } = await sampleRun();
    const r = await cli(['--work-root', work, 'report']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('# fresh-smoke --inject unit-masked: FAILED');
    expect(r.stdout).toContain(`report: ${path.join(dir, 'report.html')}`);
    const notRun = mkdtempSync(path.join(os.tmpdir(), 'uc-notrun-'));
    writeFileSync(path.join(notRun, 'x'), '');
    const bad = await cli(['report', notRun]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('is not a run dir');
    expect(existsSync(path.join(dir, 'report.html'))).toBe(true);
  });
});
