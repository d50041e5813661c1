import { InvalidArgumentError } from 'commander';
import { checkListenPort, stopForward } from '../cluster/host-forward.js';
import { LIGHTNINGSTOR } from '../services/lightningstor.js';
import { type ClusterEnv, clusterLane } from './lane.js';
import { readiness } from './steps/readiness.js';
import { browserVisit, counterUnreachable, forwardTargetRefused, serveWebapp, WEBAPP_FORWARD } from './steps/serve-webapp.js';
import { newRunState, type RunState } from './steps/state.js';
import { sweepLane } from './steps/tenants.js';
import { vmLiveMigration } from './steps/vm-live-migration.js';
import { guestRestart, snapshotBuckets, webappAfterMigration, webappVisits, webappVm } from './steps/webapp.js';

const SERVICES = ['iam', 'plasmavmc', 'plasmavmc-agent', 'prismnet', 'coronafs', 'flaredb-http', ...LIGHTNINGSTOR] as const;

type ServeCtx = ClusterEnv<(typeof SERVICES)[number]> & { state: RunState };

const listenPort = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a TCP port (0-65535; 0: any free port)');
  return n;
};

/**
 * The demo web app's flow, then the app left running behind a host URL: a detached ssh forward
 * into its tenant network, checked with curl-like requests and a real headless browser, which
 * `ultracloud stop` (or the next run) ends.
 */
export const serveVmWebapp = clusterLane<ServeCtx>()({
  name: 'serve-vm-webapp',
  description:
    "demo-vm-webapp's flow, then the web app left running at a http://127.0.0.1:<port>/ URL forwarded from the host into its tenant network, checked in headless chromium (ultracloud stop ends it)",
  kind: 'cluster',
  services: SERVICES,
  leavesRunning: 'the served web app',
  options: [{ flags: '--port <n>', description: 'host port for the URL on 127.0.0.1 (0: any free port)', parse: listenPort, default: 0 }],
  prepare: async ({ paths, options }) => {
    if (options.port) await checkListenPort(paths.state, options.port as number, WEBAPP_FORWARD);
  },
  context: (env) => ({ ...env, state: newRunState('serve') }),
  steps: [readiness, webappVm, webappVisits, guestRestart, vmLiveMigration('webapp-vm'), webappAfterMigration, serveWebapp, browserVisit],
  controls: {
    'forward-target-refused': forwardTargetRefused,
    'counter-unreachable': counterUnreachable,
  },
  // A green run leaves its VM and forward (the next run, or stop, replaces them); anything else takes both down.
  teardown: async (ctx, passed) => {
    if (passed) return;
    await stopForward(ctx.paths.state, WEBAPP_FORWARD);
    await sweepLane(ctx.state.lane, ctx.services, snapshotBuckets(ctx.state.lane));
  },
  report: ({ state }, passed) =>
    passed && state.served
      ? {
          text: `serve-vm-webapp: PASSED; the web app is served at ${state.served} (GET /state, POST /visit) until \`ultracloud stop\``,
          data: { url: state.served },
        }
      : {},
});
