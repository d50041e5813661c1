import { CreateBucketCommand, GetObjectCommand, PutBucketVersioningCommand } from '@aws-sdk/client-s3';
import { CheckFailed, errorMessage } from '../../core/errors.js';
import type { StepContext } from '../../core/run-record.js';
import type { LIGHTNINGSTOR } from '../../services/lightningstor.js';
import type { ClusterEnv, Step } from '../lane.js';
import type { RunState } from './state.js';
import { lightningstorReady, s3Error } from './storage-api.js';
import { laneTenants, sweepLane } from './tenants.js';
import { SNAPSHOT_KEY, snapshotVersions, WebappGuest, type WebappState } from './webapp-guest.js';

export type WebappEnv = ClusterEnv<
  'iam' | 'plasmavmc' | 'plasmavmc-agent' | 'prismnet' | 'coronafs' | 'flaredb-http' | (typeof LIGHTNINGSTOR)[number]
> & {
  state: RunState;
};

const CIDR = '10.242.0.0/24';
const VISITS = 3;
/** The snapshot URL is signed for this long: the guest PUTs every snapshot with it. */
const PRESIGNED_FOR_S = 6 * 3600;
export const snapshotBuckets = (lane: string) => `${lane}-snapshots-`;

/** The demo's running app, with what the lane expects of it; at `served` (a host URL), when given. */
export function webappOf(
  ctx: WebappEnv,
  served?: string,
): { guest: WebappGuest; webapp: NonNullable<RunState['webapp']>; hosted: NonNullable<RunState['hosted']> } {
  const { hosted, webapp } = ctx.state;
  if (!hosted || !webapp) throw new CheckFailed('webapp-vm left no web app (it runs first)');
  return { guest: new WebappGuest(ctx.cluster, hosted.network, hosted.vms[0]!, served), webapp, hosted };
}

/** Where the app keeps its counter: flaredb-http's API on the first flaredb node. */
export function counterEndpoint(ctx: Pick<WebappEnv, 'services'>): { host: string; port: number } {
  const flaredb = ctx.services['flaredb-http'];
  return { host: flaredb.nodes()[0]!.spec.ip, port: flaredb.svc.port('api') };
}

/**
 * The app's state is whole: /state shows the expected visits, flaredb holds that counter (read on
 * a standby: replicated), and lightningstor holds one snapshot version per visit, the latest with
 * that count. Then one more visit, which must add one to each. Returns the state after it.
 */
async function intactThenVisit(ctx: WebappEnv, step: StepContext, what: string): Promise<WebappState> {
  const { guest, webapp } = webappOf(ctx);
  const s3 = await ctx.services.lightningstor.s3();
  const check = async (when: 'before' | 'after') => {
    const shown = await guest.state();
    const standby = ctx.services['flaredb-http'].nodes().at(-1)!;
    const stored = await ctx.services['flaredb-http'].read(standby, webapp.counterKey);
    const versions = await snapshotVersions(s3, webapp.bucket);
    const latest = await s3
      .send(new GetObjectCommand({ Bucket: webapp.bucket, Key: SNAPSHOT_KEY }))
      .then(async (o) => JSON.parse((await o.Body?.transformToString()) ?? '{}') as Partial<WebappState> & { error?: string })
      .catch((e: unknown) => ({ error: s3Error(e), visits: undefined }));
    const wrong: string[] = [];
    if (shown.visits !== webapp.visits) wrong.push(`/state shows ${shown.visits} visits`);
    if (stored.value !== String(webapp.visits))
      wrong.push(`flaredb on ${standby} holds ${stored.value ?? 'no'} counter (HTTP ${stored.status})`);
    if (versions.length !== webapp.visits)
      wrong.push(`lightningstor holds ${versions.length} version(s) of ${webapp.bucket}/${SNAPSHOT_KEY}`);
    if (latest.error) wrong.push(`the latest snapshot cannot be read: ${latest.error}`);
    else if (latest.visits !== webapp.visits) wrong.push(`the latest snapshot says ${latest.visits} visits`);
    await step.json(`webapp-${what}-${when}.json`, { shown, counter: stored, versions, latest });
    if (wrong.length) throw new CheckFailed(`${when} the visit (${what}), ${webapp.visits} visits were expected: ${wrong.join('; ')}`);
    return shown;
  };
  await check('before');
  const after = await guest.visit();
  webapp.visits++;
  if (after.visits !== webapp.visits) throw new CheckFailed(`a visit after ${what} answered ${after.visits}, expected ${webapp.visits}`);
  return check('after');
}

/**
 * The demo web app's VM: a tenant network with egress (its guests reach the cluster's services
 * through the DHCP worker), a versioned bucket for the app's snapshots and a presigned PUT for
 * them, a counter key in flaredb; a coronafs volume seeded with the app's config; the VM on the
 * first worker, whose guest starts the app once the counter answers.
 */
export const webappVm: Step<WebappEnv> = {
  name: 'webapp-vm',
  proves:
    'a VM on a tenant network with egress boots from its image with a coronafs volume whose seeded config names its flaredb counter and its snapshot URL; the guest starts the web app once flaredb answers it',
  needs: ['readiness'],
  run: async (ctx, step) => {
    const { iam, plasmavmc, prismnet, coronafs, lightningstor } = ctx.services;
    const { state } = ctx;
    await lightningstorReady(ctx.services);
    await sweepLane(state.lane, ctx.services, snapshotBuckets(state.lane));
    const t = await laneTenants(iam, state.lane);
    const s3 = await lightningstor.s3();

    step.phase('bucket');
    const bucket = `${snapshotBuckets(state.lane)}${state.runId}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    const snapshotUrl = await lightningstor.presignedPut(bucket, SNAPSHOT_KEY, PRESIGNED_FOR_S);
    const counterKey = `${state.lane}-visits-${state.runId}`;
    const counter = counterEndpoint(ctx);
    const counterUrl = `http://${counter.host}:${counter.port}/v1/kv/${counterKey}`;

    step.phase('vm');
    const a = t.a;
    const image = await plasmavmc.importImage(a, 'inner-guest', plasmavmc.params.image);
    const network = await prismnet.createNetwork(a, `${state.lane}-${state.runId}`, CIDR, { egress: true });
    const port = await prismnet.createPort(a, network.id, 'webapp');
    const config = `webapp=1\ncounter_url=${counterUrl}\nsnapshot_url=${snapshotUrl}\n`;
    const volume = await coronafs.createVolume(a, {
      name: 'webapp-config',
      sizeMiB: 16,
      kind: 'controller',
      seed: Buffer.from(config).toString('base64'),
    });
    const worker = ctx.services['plasmavmc-agent'].nodes()[0]!.name;
    const vm = await plasmavmc.createVm(a, { name: 'webapp', image: image.id, worker, ports: [port.id], volumes: [volume.id] });
    state.hosted = { tenant: a, other: t.b, image: image.id, network, vms: [vm] };
    const ready = await plasmavmc
      .waitForConsole(a, vm, new RegExp(`ULTRACLOUD_WEBAPP_READY vm=${vm.id} visits=(\\d+)`), 'the web app ready', {
        timeoutMs: 300_000,
        stopIf: /ULTRACLOUD_(WEBAPP|INNER_NET)_FAILED vm=\S+.*/,
        log: step.log,
      })
      .catch(async (e: unknown) => {
        await step.evidence(`vms/${worker}-${vm.id}.console.log`, await plasmavmc.console(a, vm.id));
        throw new CheckFailed(`${errorMessage(e)}\n${await prismnet.egressState(ctx.cluster.node(network.dhcpWorker), network)}`);
      });
    const shown = await new WebappGuest(ctx.cluster, network, vm).state();
    state.webapp = { counterKey, bucket, visits: Number(ready.match[1]), boot: shown.boot };
    await step.json('webapp-vm.json', { vm, network, volume: { ...volume, seed: undefined }, bucket, counterKey, shown });
    return `vm ${vm.id} on ${worker} (${network.cidr}, egress via ${network.dhcpWorker}) serves the web app: ${JSON.stringify(shown)}`;
  },
};

export const webappVisits: Step<WebappEnv> = {
  name: 'webapp-visits',
  proves: `${VISITS} visits to the web app each add one to its flaredb counter and one version of its JSON snapshot in lightningstor; /state, flaredb (read on a standby) and the latest snapshot agree`,
  needs: ['webapp-vm'],
  run: async (ctx, step) => {
    const { guest, webapp } = webappOf(ctx);
    for (let i = 0; i < VISITS - 1; i++) {
      const s = await guest.visit();
      webapp.visits++;
      if (s.visits !== webapp.visits) throw new CheckFailed(`visit ${i + 1} answered ${s.visits}, expected ${webapp.visits}`);
    }
    const s = await intactThenVisit(ctx, step, 'visits');
    return `${VISITS} visits: ${JSON.stringify(s)}`;
  },
};

export const guestRestart: Step<WebappEnv> = {
  name: 'guest-restart',
  proves:
    'the guest restarted through plasmavmc boots anew (a new boot id), reads its config from its volume again and serves the same counter and snapshots; a visit adds one to each',
  needs: ['webapp-vm'],
  run: async (ctx, step) => {
    const { guest, webapp } = webappOf(ctx);
    const { plasmavmc } = ctx.services;
    const a = ctx.state.hosted!.tenant;
    const t0 = performance.now();
    const vm = await plasmavmc.restart(a, guest.vm.id);
    await plasmavmc.waitForConsole(
      a,
      vm,
      new RegExp(`ULTRACLOUD_WEBAPP_READY vm=${vm.id} visits=${webapp.visits}\\b`),
      `the web app ready with ${webapp.visits} visits`,
      {
        timeoutMs: 300_000,
        stopIf: /ULTRACLOUD_(WEBAPP|INNER_NET)_FAILED vm=\S+.*/,
        log: step.log,
      },
    );
    const restartS = (performance.now() - t0) / 1000;
    const s = await intactThenVisit(ctx, step, 'restart');
    if (s.boot === webapp.boot) throw new CheckFailed(`vm ${vm.id} still has boot id ${s.boot} after the restart`);
    webapp.boot = s.boot;
    return `restart to ready in ${restartS.toFixed(1)} s (boot ${s.boot}); ${JSON.stringify(s)}`;
  },
};

export const webappAfterMigration: Step<WebappEnv> = {
  name: 'webapp-after-migration',
  proves:
    'after the live migration the same guest (its boot id unchanged) serves the same counter and snapshots from the other worker; a visit adds one to each',
  needs: ['vm-live-migration'],
  run: async (ctx, step) => {
    const { webapp } = webappOf(ctx);
    const s = await intactThenVisit(ctx, step, 'migration');
    if (s.boot !== webapp.boot)
      throw new CheckFailed(`the guest booted anew (boot id ${s.boot}, was ${webapp.boot}): the migration was not live`);
    return JSON.stringify(s);
  },
};
