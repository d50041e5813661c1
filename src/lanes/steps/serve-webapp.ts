import { startForward } from '../../cluster/host-forward.js';
import { CheckFailed } from '../../core/errors.js';
import { tcpBlocked } from '../../faults/tcp-blocked.js';
import { launchBrowser } from '../../probes/browser.js';
import type { Control, Step } from '../lane.js';
import { counterEndpoint, type WebappEnv, webappOf } from './webapp.js';
import { WEBAPP_PORT } from './webapp-guest.js';

/** The forward's name under `<state>/forwards/`: `status` lists it, `stop` ends it. */
export const WEBAPP_FORWARD = 'webapp';

/**
 * A host URL for the web app: a detached ssh forward through its network's DHCP worker to the
 * VM's port, checked as a user would use it before the run ends and left running.
 */
export const serveWebapp: Step<WebappEnv> = {
  name: 'serve-webapp',
  proves:
    "the web app is served at http://127.0.0.1:<port>/ on the host by a detached ssh forward through its network's DHCP worker that outlives the run (until `ultracloud stop`): / is the page with the counter and a Visit button, /state the same state, POST /visit adds one",
  needs: ['webapp-vm'],
  run: async (ctx, step) => {
    const { webapp, hosted } = webappOf(ctx);
    const vm = hosted.vms[0]!;
    const via = ctx.cluster.node(hosted.network.dhcpWorker);
    const forward = await startForward(ctx.paths.state, {
      name: WEBAPP_FORWARD,
      via,
      target: { host: vm.nics[0]!.ip, port: WEBAPP_PORT },
      listenPort: ctx.options.port as number,
      check: async (url) => {
        const { guest } = webappOf(ctx, url);
        const shown = await guest.state();
        if (shown.vm !== vm.id || shown.visits !== webapp.visits)
          throw new CheckFailed(`${url}state answered ${JSON.stringify(shown)}: vm ${vm.id} with ${webapp.visits} visits was expected`);
        const page = await guest.page();
        if (!page.includes(`<span id="visits">${webapp.visits}</span>`) || !page.includes('<button id="visit">'))
          throw new CheckFailed(`${url} is not the web app's page with ${webapp.visits} visits and a Visit button: ${page.slice(0, 300)}`);
        const after = await guest.visit();
        webapp.visits++;
        if (after.visits !== webapp.visits) throw new CheckFailed(`POST ${url}visit answered ${after.visits}, expected ${webapp.visits}`);
      },
    });
    ctx.state.served = forward.url;
    await step.json('serve-webapp.json', forward);
    return `${forward.url} -> ${forward.target.host}:${forward.target.port} via ${forward.via} (ssh pid ${forward.pid}); ${webapp.visits} visits`;
  },
};

/** The served page in a real browser: what a user sees and clicks, with a screenshot as evidence. */
export const browserVisit: Step<WebappEnv> = {
  name: 'browser-visit',
  proves:
    "headless chromium opens the served page and shows the counter; a click on Visit (the page's own script POSTs /visit) raises it by one; the page is saved as webapp-browser.png",
  needs: ['serve-webapp'],
  run: async (ctx, step) => {
    const { webapp } = webappOf(ctx);
    const url = ctx.state.served!;
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage({ viewport: { width: 900, height: 480 } });
      await page.goto(url, { timeout: 30_000 });
      const shown = (await page.locator('#visits').textContent({ timeout: 10_000 }))?.trim();
      const [reply] = await Promise.all([
        page.waitForResponse((r) => new URL(r.url()).pathname === '/visit', { timeout: 30_000 }),
        page.locator('#visit').click({ timeout: 10_000 }),
      ]);
      const wrong: string[] = [];
      if (shown !== String(webapp.visits)) wrong.push(`the page showed "${shown}" visits, expected ${webapp.visits}`);
      if (reply.status() !== 200)
        wrong.push(`its Visit button's POST /visit answered ${reply.status()}: ${(await reply.text()).slice(0, 300)}`);
      else {
        webapp.visits++;
        const rose = await page
          .waitForFunction((n) => document.getElementById('visits')?.textContent === String(n), webapp.visits, { timeout: 10_000 })
          .then(() => true)
          .catch(() => false);
        if (!rose) wrong.push(`after the click the page shows "${await page.locator('#visits').textContent()}", expected ${webapp.visits}`);
      }
      await step.evidence('webapp-browser.png', await page.screenshot());
      if (wrong.length) throw new CheckFailed(`${url} in chromium: ${wrong.join('; ')}`);
      return `${url}: chromium showed ${shown} visits, clicked Visit, then ${webapp.visits}; screenshot webapp-browser.png`;
    } finally {
      await browser.close();
    }
  },
};

/** The DHCP worker resets its connections to the VM's web port: the forward opens but carries nothing. */
export const forwardTargetRefused: Control<WebappEnv, 'serve-webapp'> = {
  description: "the network's DHCP worker resets new connections to the web app's port in the VM",
  breaks: 'serve-webapp',
  fault: (ctx) => {
    const { hosted } = webappOf(ctx);
    const ip = hosted.vms[0]!.nics[0]!.ip;
    return tcpBlocked(ctx.cluster.node(hosted.network.dhcpWorker), {
      kind: 'webapp-port-refused',
      name: `webapp-port-refused: ${hosted.network.dhcpWorker} resets connections to ${ip}:${WEBAPP_PORT}`,
      table: 'webapp_port',
      hook: 'output',
      to: ip,
      port: WEBAPP_PORT,
      verdict: 'reject',
    });
  },
};

/** The VM's traffic to its flaredb counter is reset where the DHCP worker routes it: visits cannot count. */
export const counterUnreachable: Control<WebappEnv, 'browser-visit'> = {
  description: "the DHCP worker resets the VM's connections to its flaredb counter",
  breaks: 'browser-visit',
  fault: (ctx) => {
    const { hosted } = webappOf(ctx);
    const ip = hosted.vms[0]!.nics[0]!.ip;
    const counter = counterEndpoint(ctx);
    return tcpBlocked(ctx.cluster.node(hosted.network.dhcpWorker), {
      kind: 'counter-unreachable',
      name: `counter-unreachable: ${hosted.network.dhcpWorker} resets ${ip} -> ${counter.host}:${counter.port}`,
      table: 'webapp_counter',
      hook: 'forward',
      from: ip,
      to: counter.host,
      port: counter.port,
      verdict: 'reject',
    });
  },
};
