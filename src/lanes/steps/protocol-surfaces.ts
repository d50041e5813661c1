import type { Cluster } from '../../cluster/cluster.js';
import { CheckFailed } from '../../core/errors.js';
import { waitFor } from '../../core/retry.js';
import { tcpConnect } from '../../host/tcp.js';
import { http } from '../../probes/http.js';
import { probeSurfaces, type SurfaceResult } from '../../probes/surfaces.js';
import type { Step } from '../lane.js';

/** From the host, every exposed port through its QEMU forward: HTTP answers its health path, TCP accepts. */
async function exposedSurfaces(cluster: Cluster): Promise<SurfaceResult[]> {
  const out: SurfaceResult[] = [];
  for (const node of cluster.nodes()) {
    const rec = await node.record();
    for (const [svc, c] of Object.entries(cluster.profile.services)) {
      for (const p of c.ports.filter((x) => x.expose && rec.ports[`${svc}-${x.name}`])) {
        const hostPort = rec.ports[`${svc}-${p.name}`]!.host;
        const health = c.health?.kind === 'http' && c.health.port === p.port ? c.health : null;
        const url = p.protocol === 'http' ? `http://127.0.0.1:${hostPort}${health?.path ?? '/'}` : `tcp://127.0.0.1:${hostPort}`;
        const ok = (status: number) => (health ? status === health.expectStatus : status < 500);
        const r = await (p.protocol === 'http'
          ? http('GET', url).then((x) => ({ ok: ok(x.status), detail: `${x.status}` }))
          : tcpConnect(hostPort).then(() => ({ ok: true, detail: 'open' }))
        ).catch((e: Error) => ({ ok: false, detail: e.message }));
        out.push({ node: node.name, service: svc, check: `host ${url}`, ...r });
      }
    }
  }
  return out;
}

/** Every declared port and health probe of every service, from inside each node and from the host. */
export const protocolSurfaces: Step<{ cluster: Cluster }> = {
  name: 'protocol-surfaces',
  proves: 'every declared port and health probe of every service, from inside each node, and every exposed port from the host',
  needs: ['readiness'],
  run: async ({ cluster }, step) => {
    step.phase('deferred units');
    await Promise.all(cluster.nodes().map((n) => n.waitForDeferredUnits()));
    step.phase('surfaces');
    // Judged over a short window: one sample on a TCG guest under load can miss a busy service, so
    // a surface that answered once in the window has answered (not all of them in the same sample).
    // 90 s: etcd's /health gives its linearizable read 1 s, which a starved TCG quorum misses for tens of seconds.
    let attempts = 0;
    let results: SurfaceResult[] = [];
    const answered = new Map<string, SurfaceResult>();
    const key = (r: SurfaceResult) => `${r.node}|${r.service}|${r.check}`;
    await waitFor('every declared surface answers', { timeoutMs: 90_000, intervalMs: 3000 }, async () => {
      attempts++;
      const sample = [
        ...(await Promise.all(cluster.nodes().map((n) => probeSurfaces(cluster.profile, n)))).flat(),
        ...(await exposedSurfaces(cluster)),
      ];
      for (const r of sample.filter((x) => x.ok)) answered.set(key(r), r);
      results = sample.map((r) => answered.get(key(r)) ?? r);
      const bad = results.filter((r) => !r.ok);
      if (bad.length)
        throw new CheckFailed(
          `${bad.length} of ${results.length} surface checks failed: ${bad.map((b) => `${b.node} ${b.service} ${b.check} (${b.detail})`).join('; ')}`,
        );
    }).finally(() => step.json('surfaces.json', { attempts, results }));
    const metrics = results.filter((r) => r.service === 'nightlight').length;
    return `${results.length} checks passed on ${new Set(results.map((r) => r.node)).size} nodes (${metrics} nightlight/metrics)${attempts > 1 ? ` after ${attempts} attempts` : ''}`;
  },
};
