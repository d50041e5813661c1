// k8shost's translation of workloads into the platform's own objects. k8shost owns only the
// Kubernetes shapes; prismnet, fiberlb and flashdns own what they become (the seeds' boundary),
// and k8shost asks them with the caller's own token, so a tenant gets nothing it could not make:
//   a pod annotated prismnet.ultracloud.io/network=<id> -> a prismnet port on that network (its podIP)
//   a service -> a fiberlb load balancer on the gateway with a pool, one backend per selected pod
//               that has an IP, and a flashdns A record <service>.<namespace>.<tenant>.<zone> for it
// A translation that fails part-way undoes what it made and answers 502 naming who refused.
'use strict';
const crypto = require('node:crypto');
const { request, fail } = require('./http-json.js');

const PRISMNET = process.env.PRISMNET_URL || 'http://127.0.0.1:8110';
const FIBERLB = process.env.FIBERLB_URL || 'http://127.0.0.1:8150';
const ZONE = (process.env.K8SHOST_DNS_ZONE || 'svc.ultracloud.lab').replace(/\.?$/, '.');
/** Where flashdns publishes its API (url and key) in chainfire. */
const FLASHDNS_KEY = '/ultracloud/flashdns/api';
/** Frontend ports fiberlb takes for services; a service starts at a port from its uid and walks on past taken ones. */
const FRONTENDS = { first: 10500, count: 500 };
const NETWORK = 'prismnet.ultracloud.io/network';
const ANN = {
  port: 'prismnet.ultracloud.io/port',
  loadbalancer: 'fiberlb.ultracloud.io/loadbalancer',
  pool: 'fiberlb.ultracloud.io/pool',
  dns: 'flashdns.ultracloud.io/name',
};

const short = (s) => crypto.createHash('sha256').update(s).digest('hex').slice(0, 10);
/** Names the other APIs accept (lowercase, at most 32): derived from the object's uid, stable for its life. */
const nameOf = (kind, obj) => `k8s-${kind}-${short(obj.metadata.uid)}`;
const dnsLabel = (s) => (/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(s) ? s : `t${short(s)}`);

/** One call to another service as the caller; a refusal becomes a 502 (503 if it did not answer) naming it. */
async function call(service, base, method, path, body, headers) {
  let r;
  try {
    r = await request(method, `${base}${path}`, body, headers);
  } catch (e) {
    throw fail(503, `${service} at ${base} did not answer ${method} ${path}: ${e.message}`);
  }
  if (r.status >= 300) {
    const why = r.body?.error ?? r.body?.message ?? r.body?.raw ?? JSON.stringify(r.body);
    throw Object.assign(fail(502, `${service} refused ${method} ${path}: ${r.status} ${String(why).slice(0, 300)}`), { upstream: r.status });
  }
  return r.body;
}

/** A delete whose object is already gone has done its job (a rerun, or a sweep of the other service). */
const gone = (promise) =>
  promise.catch((e) => {
    if (e.upstream !== 404) throw e;
  });

function translator(cf) {
  const bearer = (token) => ({ authorization: `Bearer ${token}` });
  const prismnet = (token, method, path, body) => call('prismnet', PRISMNET, method, path, body, bearer(token));
  const fiberlb = (token, method, path, body) => call('fiberlb', FIBERLB, method, path, body, bearer(token));
  async function flashdns(method, path, body) {
    const api = (await cf.get(FLASHDNS_KEY))?.value;
    if (!api) throw fail(503, `flashdns has not published its API in chainfire (${FLASHDNS_KEY})`);
    return call('flashdns', `${api.url}/api/v1/servers/localhost`, method, path, body, { 'x-api-key': api.key });
  }

  /** Run steps in order; if one throws, run the undos of those done (newest first), then rethrow. */
  async function saga(steps) {
    const undos = [];
    try {
      for (const [run, undo] of steps) {
        const done = await run();
        if (undo) undos.unshift(() => undo(done));
      }
    } catch (e) {
      for (const u of undos) await u().catch(() => {});
      throw e;
    }
  }

  const selects = (svc, pod) => {
    const sel = svc.spec.selector;
    const podLabels = pod.metadata.labels || {};
    return Boolean(sel && Object.keys(sel).length) && Object.entries(sel).every(([k, v]) => podLabels[k] === v);
  };
  const targetPort = (svc) => svc.spec.ports[0].targetPort ?? svc.spec.ports[0].port;
  const dnsName = (tenant, ns, svc) => `${svc.metadata.name}.${ns}.${dnsLabel(tenant)}.${ZONE}`;

  async function ensureZone() {
    try {
      await flashdns('GET', `/zones/${ZONE}`);
    } catch (e) {
      if (e.upstream !== 404 && e.upstream !== 422) throw e;
      await flashdns('POST', '/zones', { name: ZONE, kind: 'Native', nameservers: [`ns.${ZONE}`] }).catch((c) => {
        if (c.upstream !== 409) throw c; // made meanwhile by another k8shost
      });
    }
  }
  const setRecord = (name, type, contents) =>
    flashdns('PATCH', `/zones/${ZONE}`, {
      rrsets: [{ name, type, ttl: 30, changetype: contents.length ? 'REPLACE' : 'DELETE', records: contents.map((content) => ({ content, disabled: false })) }],
    });

  /** A pod's backend in a service's pool (named from the pod's uid). */
  const addBackend = (token, pool, pod, port) =>
    fiberlb(token, 'POST', `/v1/pools/${pool}/backends`, { name: nameOf('pod', pod), address: pod.status.podIP, port });
  async function removeBackend(token, pool, pod) {
    const got = await gone(fiberlb(token, 'GET', `/v1/pools/${pool}`));
    for (const b of (got?.backends ?? []).filter((x) => x.name === nameOf('pod', pod))) await gone(fiberlb(token, 'DELETE', `/v1/backends/${b.id}`));
  }

  return {
    /** A new pod: its prismnet port (when it names a network), and a backend in each service that selects it. */
    async podCreated(token, pod, services) {
      const network = pod.metadata.annotations?.[NETWORK];
      if (!network) return pod;
      let port;
      try {
        port = await prismnet(token, 'POST', `/v1/networks/${encodeURIComponent(network)}/ports`, { name: nameOf('pod', pod) });
      } catch (e) {
        if (e.upstream === 404) throw Object.assign(fail(422, `metadata.annotations.${NETWORK}: Invalid value: no network ${network} of this tenant`), { field: `metadata.annotations.${NETWORK}` });
        throw e;
      }
      const placed = {
        ...pod,
        metadata: { ...pod.metadata, annotations: { ...pod.metadata.annotations, [ANN.port]: port.id } },
        status: { ...pod.status, podIP: port.ip, podIPs: [{ ip: port.ip }] },
      };
      await saga([
        [async () => port, (p) => prismnet(token, 'DELETE', `/v1/ports/${p.id}`)],
        ...services
          .filter((s) => selects(s, placed))
          .map((s) => [() => addBackend(token, s.metadata.annotations[ANN.pool], placed, targetPort(s)), (b) => fiberlb(token, 'DELETE', `/v1/backends/${b.id}`)]),
      ]);
      return placed;
    },

    /** A pod gone: its backends leave the services that selected it, then its port goes. */
    async podDeleted(token, pod, services) {
      if (!pod.status.podIP) return;
      for (const s of services.filter((x) => selects(x, pod))) await removeBackend(token, s.metadata.annotations[ANN.pool], pod);
      const port = pod.metadata.annotations?.[ANN.port];
      if (port) await gone(prismnet(token, 'DELETE', `/v1/ports/${port}`));
    },

    /** A new service: a load balancer on a free frontend port, its pool and backends, and its DNS name. */
    async serviceCreated(token, tenant, ns, svc, pods) {
      if (svc.spec.ports.length !== 1)
        throw Object.assign(fail(422, 'spec.ports: Invalid value: the lab translates a service with exactly one port (one fiberlb frontend)'), { field: 'spec.ports' });
      const name = nameOf('svc', svc);
      const fqdn = dnsName(tenant, ns, svc);
      let lb;
      let pool;
      await saga([
        [
          async () => {
            const start = parseInt(short(svc.metadata.uid), 16) % FRONTENDS.count;
            for (let i = 0; i < FRONTENDS.count && !lb; i++) {
              const port = FRONTENDS.first + ((start + i) % FRONTENDS.count);
              lb = await fiberlb(token, 'POST', '/v1/loadbalancers', { name, port, mode: 'tcp' }).catch((e) => {
                if (e.upstream === 409 && /frontend port/.test(e.message)) return undefined;
                throw e;
              });
            }
            if (!lb) throw fail(503, `fiberlb has no free frontend port from ${FRONTENDS.first} to ${FRONTENDS.first + FRONTENDS.count - 1}`);
            return lb;
          },
          (x) => fiberlb(token, 'DELETE', `/v1/loadbalancers/${x.id}`),
        ],
        [async () => (pool = await fiberlb(token, 'POST', '/v1/pools', { name, loadbalancer: lb.id })), (x) => fiberlb(token, 'DELETE', `/v1/pools/${x.id}`)],
        ...pods
          .filter((p) => p.status.podIP && selects(svc, p))
          .map((p) => [() => addBackend(token, pool.id, p, targetPort(svc)), (b) => fiberlb(token, 'DELETE', `/v1/backends/${b.id}`)]),
        [ensureZone],
        [() => setRecord(fqdn, 'A', [lb.address]), () => setRecord(fqdn, 'A', [])],
      ]);
      return {
        ...svc,
        metadata: { ...svc.metadata, annotations: { ...svc.metadata.annotations, [ANN.loadbalancer]: lb.id, [ANN.pool]: pool.id, [ANN.dns]: fqdn } },
        status: { loadBalancer: { ingress: [{ ip: lb.address, hostname: fqdn.replace(/\.$/, ''), ports: [{ port: lb.port, protocol: 'TCP' }] }] } },
      };
    },

    /** A service gone: its DNS name, then its backends, pool and load balancer. */
    async serviceDeleted(token, svc) {
      const a = svc.metadata.annotations || {};
      if (a[ANN.dns]) await setRecord(a[ANN.dns], 'A', []);
      if (a[ANN.pool]) {
        const pool = await gone(fiberlb(token, 'GET', `/v1/pools/${a[ANN.pool]}`));
        for (const b of pool?.backends ?? []) await gone(fiberlb(token, 'DELETE', `/v1/backends/${b.id}`));
        await gone(fiberlb(token, 'DELETE', `/v1/pools/${a[ANN.pool]}`));
      }
      if (a[ANN.loadbalancer]) await gone(fiberlb(token, 'DELETE', `/v1/loadbalancers/${a[ANN.loadbalancer]}`));
    },
  };
}

module.exports = { translator };
