import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { withoutScrapeJob } from '../../src/faults/scrape-job-removed.js';
import { REPO } from '../helpers/cli.js';

/** The creditservice-unscraped control edits the config the gateway role writes: what it leaves must still be that config, less one job. */
describe('withoutScrapeJob', () => {
  const role = readFileSync(path.join(REPO, 'profiles/lab/image/overlay/etc/ultracloud/roles.d/gateway.sh'), 'utf8');
  const config = /cat > \/etc\/ultracloud\/nightlight\.yml <<EOT\n([\s\S]*?)EOT\n/.exec(role)![1]!;

  it('drops the job with its comment and keeps every other job', () => {
    const out = withoutScrapeJob(config, 'creditservice');
    expect(config).toContain('- job_name: creditservice');
    expect(out).not.toMatch(/creditservice|8090/);
    expect(out).toContain("  - job_name: nightlight\n    static_configs:\n      - targets: ['127.0.0.1:9090']\n");
    expect(out.startsWith('global:\n  scrape_interval: 15s\nscrape_configs:\n')).toBe(true);
  });

  it('leaves a config without that job as it is', () => {
    expect(withoutScrapeJob(config, 'nosuchjob')).toBe(config);
  });
});
