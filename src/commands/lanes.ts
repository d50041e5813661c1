import { type Command, Option } from 'commander';
import { cleanCluster, lockState, startCluster, stopCluster } from '../cluster/lifecycle.js';
import { EXIT_CHECK_FAILED, EXIT_OK } from '../core/errors.js';
import { RunRecord } from '../core/run-record.js';
import { onCleanup } from '../core/shutdown.js';
import { seconds } from '../core/time.js';
import { INJECTIONS, makeInjection } from '../faults/injections.js';
import { hostFacts } from '../host/facts.js';
import { buildImages } from '../images/build.js';
import { runSmoke } from '../lanes/smoke.js';
import { accelVerdict } from '../vm/accel-probe.js';
import { accelOption, DEFAULT_WAVE_TIMEOUT_S, openCluster, positiveNumber } from './cluster.js';
import { action, emit, globals, withProfile } from './context.js';

const injectOption = () =>
  new Option(
    '--inject <name...>',
    `negative control: break what one step proves (${Object.entries(INJECTIONS)
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ')})`,
  ).choices(Object.keys(INJECTIONS));

export function registerLanes(program: Command): void {
  program
    .command('smoke')
    .description('the smoke lane on the running cluster: readiness, formation, surfaces, replication, iam, entrypoints, leader power cut')
    .addOption(injectOption())
    .action(
      action(async (opts: { inject?: string[] }, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        const cluster = await openCluster(ctx, 'smoke');
        await lockState(cluster, 'smoke');
        const injections = (opts.inject ?? []).map((n) => makeInjection(cluster, n));
        const rec = await RunRecord.create({ workRoot: ctx.workRoot, lane: 'smoke', profile: ctx.profile.name, host: hostFacts() });
        const res = await runSmoke(cluster, rec, { injections });
        emit(ctx, { ...res, dir: rec.dir }, `smoke: ${res.success ? 'PASSED' : 'FAILED'}; evidence in ${rec.dir}`);
        return res.success ? EXIT_OK : EXIT_CHECK_FAILED;
      }),
    );

  program
    .command('fresh-smoke')
    .description('clean, build, boot every node in dependency order, run the smoke lane, then stop (unless --keep)')
    .addOption(accelOption())
    .addOption(injectOption())
    .option('--keep', 'leave the cluster running afterwards')
    .option('--timeout <seconds>', 'per boot wave', positiveNumber, DEFAULT_WAVE_TIMEOUT_S)
    .action(
      action(async (opts: { accel: 'auto' | 'kvm' | 'tcg'; inject?: string[]; keep?: boolean; timeout: number }, cmd: Command) => {
        const ctx = withProfile(globals(cmd));
        const cluster = await openCluster(ctx, 'smoke');
        await lockState(cluster, 'fresh-smoke');
        const injections = (opts.inject ?? []).map((n) => makeInjection(cluster, n));
        if (!opts.keep) onCleanup('stop the fresh cluster', async () => void (await stopCluster(cluster, { powerdownMs: 30_000 })));
        const verdict = await accelVerdict();
        const rec = await RunRecord.create({
          workRoot: ctx.workRoot,
          lane: 'smoke',
          profile: ctx.profile.name,
          host: hostFacts(verdict.chosen),
        });
        const res = await runSmoke(cluster, rec, {
          injections,
          boot: async (step) => {
            const t0 = Date.now();
            await cleanCluster(cluster);
            const images = await buildImages(cluster.profile, cluster.paths, step.log);
            const t1 = Date.now();
            const r = await startCluster(cluster, { accel: opts.accel, waveTimeoutMs: opts.timeout * 1000, images });
            const boot = {
              image: images.id,
              imageReused: images.reused,
              buildMs: t1 - t0,
              bootMs: Date.now() - t1,
              waves: r.waves,
              accel: r.accel,
            };
            rec.event('info', 'fresh cluster booted', boot);
            await step.evidence('boot.json', `${JSON.stringify(boot, null, 2)}\n`);
            return `image ${images.id} ${images.reused ? 'reused' : 'built'} in ${seconds(t1 - t0)}, ${r.waves.flat().length} nodes booted in ${r.waves.length} waves in ${seconds(Date.now() - t1)} (${r.accel})`;
          },
        });
        emit(
          ctx,
          { ...res, dir: rec.dir },
          `fresh-smoke: ${res.success ? 'PASSED' : 'FAILED'}; evidence in ${rec.dir}${opts.keep ? ' (cluster left running: ultracloud stop)' : ''}`,
        );
        return res.success ? EXIT_OK : EXIT_CHECK_FAILED;
      }),
    );
}
