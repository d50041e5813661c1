import { promises as fs } from 'node:fs';
import path from 'node:path';
import { RunResult } from './result.js';
import { seconds } from './time.js';

/**
 * The two reports every run dir gets, from what the run left there: summary.md (steps, boot,
 * the fault/heal timeline, negative controls, where the evidence is) and a self-contained
 * report.html (inline CSS and SVG, no network) with a timeline of steps, node boots, faults and
 * heals in the style of Jepsen's timelines.
 */
export interface FaultRow {
  name: string;
  kind: string;
  targets: string[];
  invokedAt: string;
  healedAt: string | null;
  heal: string;
  detail: { negativeControl?: string; breaks?: string; description?: string };
}

export interface ReportInput {
  result: RunResult;
  dir: string;
  faults: FaultRow[];
  /** boot.json of fresh- runs: per node launch and ready times, or the snapshot restored. */
  boot: { mode?: string; snapshot?: string; restoreMs?: number; nodes?: Record<string, { launchedAt: string; readyAt: string }> } | null;
  /** Files in the run dir, relative, for the evidence list. */
  files: string[];
}

const readJson = async <T>(file: string): Promise<T | null> => {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch {
    return null;
  }
};

async function listFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(path.join(dir, rel), { withFileTypes: true }).catch(() => [])) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(dir, r)));
    else out.push(r);
  }
  return out.sort();
}

export async function readReportInput(dir: string, result?: RunResult): Promise<ReportInput> {
  const res = result ?? RunResult.parse(JSON.parse(await fs.readFile(path.join(dir, 'result.json'), 'utf8')));
  return {
    result: res,
    dir,
    faults: (await readJson<FaultRow[]>(path.join(dir, 'faults.json'))) ?? [],
    boot: await readJson(path.join(dir, 'boot.json')),
    files: (await listFiles(dir)).filter((f) => !/^(summary\.md|report\.html)$/.test(f)),
  };
}

const ms = (a: string, b: string | null) => (b ? Date.parse(b) - Date.parse(a) : 0);
const firstLine = (s: string | undefined) => (s ?? '').split('\n')[0] ?? '';
const icon: Record<string, string> = { passed: 'ok', failed: 'FAILED', skipped: 'skipped', running: 'interrupted' };

export function renderSummaryMd(inp: ReportInput): string {
  const r = inp.result;
  const boot = r.boot ? (r.boot.mode === 'snapshot' ? `restored from snapshot ${r.boot.snapshot}` : 'cold boot') : null;
  const lines = [
    `# ${r.command}: ${r.status.toUpperCase()}`,
    '',
    `profile \`${r.profile}\` · host ${r.host.hostname} (${r.host.cpus} cpus, ${r.host.accel ?? 'accel n/a'}) · started ${r.startedAt} · ${seconds(r.durationMs ?? 0)}${boot ? ` · ${boot}` : ''}`,
    '',
    '## Steps',
    '',
    '| # | step | status | time | detail |',
    '| --- | --- | --- | --- | --- |',
    ...r.steps.map(
      (s, i) =>
        `| ${i + 1} | ${s.name} | ${icon[s.status] ?? s.status} | ${seconds(s.durationMs)} | ${(s.status === 'failed' ? firstLine(s.error) : (s.detail ?? '')).replace(/\|/g, '\\|')} |`,
    ),
  ];
  const failed = r.steps.find((s) => s.status === 'failed');
  if (failed) lines.push('', `## Failure: ${failed.name}`, '', '```', failed.error ?? '', '```');
  if (inp.boot?.nodes) {
    lines.push('', '## Boot', '', '| node | launched | ready after |', '| --- | --- | --- |');
    for (const [n, b] of Object.entries(inp.boot.nodes)) lines.push(`| ${n} | ${b.launchedAt} | ${seconds(ms(b.launchedAt, b.readyAt))} |`);
  }
  if (inp.faults.length) {
    lines.push('', '## Faults and heals', '', '| fault | targets | invoked | healed | heal |', '| --- | --- | --- | --- | --- |');
    for (const f of inp.faults) lines.push(`| ${f.name} | ${f.targets.join(', ')} | ${f.invokedAt} | ${f.healedAt ?? '-'} | ${f.heal} |`);
    const controls = inp.faults.filter((f) => f.detail.negativeControl);
    if (controls.length) {
      lines.push('', '## Negative controls', '');
      for (const c of controls) {
        const broke = r.steps.find((s) => s.name === c.detail.breaks);
        lines.push(
          `- \`--inject ${c.detail.negativeControl}\` must break \`${c.detail.breaks}\`: it ${broke?.status === 'failed' ? 'did' : `did not (${broke?.status ?? 'not run'})`}; healed: ${c.heal}`,
        );
      }
    }
  }
  const warnings = r.events.filter((e) => e.kind === 'warning');
  if (warnings.length) lines.push('', '## Warnings', '', ...warnings.map((w) => `- ${w.name}`));
  lines.push('', '## Evidence', '', `In \`${inp.dir}\`:`, '', ...inp.files.map((f) => `- ${f}`), '');
  return lines.join('\n');
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const COLORS: Record<string, string> = {
  passed: '#2e7d32',
  failed: '#c62828',
  skipped: '#9e9e9e',
  running: '#ef6c00',
  boot: '#1565c0',
  fault: '#ef6c00',
  control: '#6a1b9a',
};

interface Bar {
  row: string;
  label: string;
  start: number;
  end: number;
  color: string;
  title: string;
}

/** The timeline: one row per step, node boot and fault, on one time axis from the run's start. */
function timelineSvg(inp: ReportInput): string {
  const r = inp.result;
  const t0 = Date.parse(r.startedAt);
  const t1 = Math.max(t0 + (r.durationMs ?? 1), ...r.steps.map((s) => (s.startedAt ? Date.parse(s.startedAt) + s.durationMs : t0)));
  const bars: Bar[] = [];
  for (const s of r.steps)
    if (s.startedAt)
      bars.push({
        row: `step ${s.name}`,
        label: s.name,
        start: Date.parse(s.startedAt),
        end: Date.parse(s.startedAt) + s.durationMs,
        color: COLORS[s.status] ?? '#555',
        title: `${s.name}: ${s.status} in ${seconds(s.durationMs)}`,
      });
  for (const [n, b] of Object.entries(inp.boot?.nodes ?? {}))
    bars.push({
      row: `boot ${n}`,
      label: n,
      start: Date.parse(b.launchedAt),
      end: Date.parse(b.readyAt),
      color: COLORS.boot!,
      title: `${n}: ready after ${seconds(ms(b.launchedAt, b.readyAt))}`,
    });
  for (const f of inp.faults)
    bars.push({
      row: `fault ${f.name}`,
      label: f.name,
      start: Date.parse(f.invokedAt),
      end: f.healedAt ? Date.parse(f.healedAt) : t1,
      color: f.detail.negativeControl ? COLORS.control! : COLORS.fault!,
      title: `${f.name}: invoked ${f.invokedAt}, ${f.heal}${f.healedAt ? ` ${f.healedAt}` : ''}`,
    });
  const rowH = 22;
  const labelW = 260;
  const width = 1100;
  const plotW = width - labelW - 20;
  // The axis spans the run and anything recorded around it (a boot that began before the record).
  const lo = Math.min(t0, ...bars.map((b) => b.start));
  const hi = Math.max(t1, ...bars.map((b) => b.end));
  const x = (t: number) => labelW + ((t - lo) / Math.max(hi - lo, 1)) * plotW;
  const h = (bars.length + 1) * rowH + 30;
  const ticks = Array.from({ length: 6 }, (_, i) => lo + ((hi - lo) * i) / 5);
  const tick = (t: number) => (hi - lo < 10_000 ? `${((t - t0) / 1000).toFixed(2)} s` : seconds(t - t0));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${h}" role="img" aria-label="timeline">`,
    ...ticks.map(
      (t) =>
        `<line x1="${x(t)}" y1="0" x2="${x(t)}" y2="${h - 20}" stroke="#e0e0e0"/><text x="${x(t)}" y="${h - 6}" font-size="11" text-anchor="middle">${tick(t)}</text>`,
    ),
    ...bars.map((b, i) => {
      const y = i * rowH + 4;
      const w = Math.max(x(b.end) - x(b.start), 2);
      return `<g><title>${esc(b.title)}</title><text x="${labelW - 6}" y="${y + 14}" font-size="12" text-anchor="end">${esc(b.row.slice(0, 40))}</text><rect class="bar" x="${x(b.start)}" y="${y}" width="${w}" height="${rowH - 6}" rx="3" fill="${b.color}"/></g>`;
    }),
    ...r.events
      .filter((e) => e.kind === 'probe' || e.kind === 'warning')
      .map(
        (e) =>
          `<g><title>${esc(`${e.kind}: ${e.name}`)}</title><circle cx="${x(Date.parse(e.at))}" cy="${bars.length * rowH + 12}" r="4" fill="${e.kind === 'warning' ? '#f9a825' : '#455a64'}"/></g>`,
      ),
    '</svg>',
  ];
  return parts.join('\n');
}

export function renderReportHtml(inp: ReportInput): string {
  const r = inp.result;
  const boot = r.boot ? (r.boot.mode === 'snapshot' ? `restored from snapshot ${r.boot.snapshot}` : 'cold boot') : '';
  const rows = r.steps
    .map((s, i) => {
      const text = s.status === 'failed' ? (s.error ?? '') : (s.detail ?? '');
      const ev = s.evidence.map((f) => `<a href="${esc(encodeURI(f))}">${esc(f)}</a>`).join(' ');
      return `<tr class="step ${s.status}" data-step="${esc(s.name)}"><td>${i + 1}</td><td>${esc(s.name)}</td><td><span class="badge ${s.status}">${esc(icon[s.status] ?? s.status)}</span></td><td>${seconds(s.durationMs)}</td><td><pre>${esc(text)}</pre>${ev ? `<div class="ev">${ev}</div>` : ''}</td></tr>`;
    })
    .join('\n');
  const faults = inp.faults
    .map(
      (f) =>
        `<tr><td>${esc(f.name)}</td><td>${esc(f.detail.negativeControl ? `control ${f.detail.negativeControl} → ${f.detail.breaks}` : 'fault')}</td><td>${esc(f.invokedAt)}</td><td>${esc(f.healedAt ?? '-')}</td><td>${esc(f.heal)}</td></tr>`,
    )
    .join('\n');
  const warnings = r.events
    .filter((e) => e.kind === 'warning')
    .map((w) => `<li>${esc(w.name)}</li>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(`${r.command}: ${r.status}`)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#212121}
h1{font-size:20px} h2{font-size:16px;margin-top:28px}
.badge{padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}
.badge.passed{background:#2e7d32}.badge.failed{background:#c62828}.badge.skipped{background:#9e9e9e}.badge.running{background:#ef6c00}
table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:top}
pre{margin:0;white-space:pre-wrap;font-size:12px;max-height:320px;overflow:auto} .ev a{margin-right:8px;font-size:12px}
td:nth-child(4),td:nth-child(3){white-space:nowrap}
.meta{color:#616161}
</style></head><body>
<h1>${esc(r.command)} <span class="badge ${r.status === 'interrupted' ? 'running' : r.status}" id="status">${esc(r.status.toUpperCase())}</span></h1>
<p class="meta">profile ${esc(r.profile)} · ${esc(r.host.hostname)} (${r.host.cpus} cpus, ${esc(r.host.accel ?? 'accel n/a')}) · started ${esc(r.startedAt)} · ${seconds(r.durationMs ?? 0)}${boot ? ` · ${esc(boot)}` : ''}</p>
<h2>Timeline</h2>
${timelineSvg(inp)}
<h2>Steps</h2>
<table id="steps"><tr><th>#</th><th>step</th><th>status</th><th>time</th><th>detail</th></tr>
${rows}
</table>
${faults ? `<h2>Faults and heals</h2><table><tr><th>fault</th><th>role</th><th>invoked</th><th>healed</th><th>heal</th></tr>\n${faults}\n</table>` : ''}
${warnings ? `<h2>Warnings</h2><ul>${warnings}</ul>` : ''}
<h2>Evidence</h2>
<ul>${inp.files.map((f) => `<li><a href="${esc(encodeURI(f))}">${esc(f)}</a></li>`).join('')}</ul>
</body></html>
`;
}

/** Write summary.md and report.html into the run dir. */
export async function writeReports(dir: string, result: RunResult): Promise<void> {
  const inp = await readReportInput(dir, result);
  await fs.writeFile(path.join(dir, 'summary.md'), renderSummaryMd(inp));
  await fs.writeFile(path.join(dir, 'report.html'), renderReportHtml(inp));
}
