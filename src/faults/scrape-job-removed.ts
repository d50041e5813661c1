import type { Node } from '../cluster/node.js';
import type { ServiceClient } from '../services/service.js';
import type { Fault } from './fault.js';

const CONFIG = '/etc/ultracloud/nightlight.yml';

/** The config without the scrape job named `job` (its block, and the comment lines just before it). */
export function withoutScrapeJob(config: string, job: string): string {
  const lines = config.split('\n');
  const start = lines.findIndex((l) => l.trim() === `- job_name: ${job}`);
  if (start < 0) return config;
  let from = start;
  while (from > 0 && lines[from - 1]!.trim().startsWith('#')) from--;
  // The block ends at the next job, or at the end (a final newline's empty last element kept).
  const end = config.endsWith('\n') ? lines.length - 1 : lines.length;
  let to = start + 1;
  while (to < end && !lines[to]!.trim().startsWith('- job_name:')) to++;
  return [...lines.slice(0, from), ...lines.slice(to)].join('\n');
}

/** nightlight stops scraping one job: its config rewritten without it and reloaded (SIGHUP). Heal: the config restored and reloaded. */
export function scrapeJobRemoved(nightlight: ServiceClient<unknown>, node: Node, job: string): Fault {
  let original: string | undefined;
  const write = async (text: string) => {
    await node.succeed(['tee', CONFIG], { stdin: text });
    await node.succeed(['systemctl', 'kill', '--signal=HUP', nightlight.unit]);
  };
  return {
    kind: 'scrape-job-removed',
    name: `scrape-job-removed: nightlight on ${node} no longer scrapes ${job}`,
    targets: [node.name],
    invoke: async () => {
      original = await node.succeed(['cat', CONFIG]);
      await write(withoutScrapeJob(original, job));
    },
    heal: async () => {
      if (original !== undefined) await write(original);
    },
  };
}
