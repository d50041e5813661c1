// k8shost (lab): Kubernetes-shaped pods and services for tenant workloads, kept in chainfire and
// scoped to the caller's tenant (every tenant has its own namespaces). It places nothing on hosts,
// as the seeds fix it: a pod stays Pending. It translates pods and services into prismnet ports,
// fiberlb load balancers and flashdns records (k8shost-translate.js). Watches are bounded snapshot
// streams: the current objects as ADDED, then changes as they happen, then the stream ends.
'use strict';
const { serve, fail } = require('./http-json.js');
const { guarded } = require('./iam-auth.js');
const { chainfire } = require('./chainfire.js');
const { uniqueBytes } = require('./tenant-store.js');
const { translator } = require('./k8shost-translate.js');

const PORT = Number(process.env.K8SHOST_PORT || 8130);
const MAX_WATCH_SECONDS = 300;
const cf = chainfire();
const translate = translator(cf);
const K = '/ultracloud/k8shost';
const KINDS = { pods: 'Pod', services: 'Service' };

// --- validation: Kubernetes' strict decoding (an unknown field is a 400 naming it), then field checks (422).

const REASONS = { 400: 'BadRequest', 401: 'Unauthorized', 404: 'NotFound', 409: 'AlreadyExists', 410: 'Expired', 422: 'Invalid', 502: 'InternalError', 503: 'ServiceUnavailable' };
const unknownField = (path) => fail(400, `strict decoding error: unknown field "${path}"`);
const invalid = (path, why) => Object.assign(fail(422, `${path}: Invalid value: ${why}`), { field: path });

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (max) => (v, p) => {
  if (typeof v !== 'string' || !v || v.length > max) throw invalid(p, `must be a non-empty string of at most ${max} characters`);
};
const label = (v, p) => {
  if (typeof v !== 'string' || !DNS_LABEL.test(v)) throw invalid(p, 'must be a lowercase RFC 1123 label (a-z, 0-9, -; at most 63)');
};
const oneOf = (...allowed) => (v, p) => {
  if (!allowed.includes(v)) throw invalid(p, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
};
const port = (v, p) => {
  if (!Number.isInteger(v) || v < 1 || v > 65535) throw invalid(p, 'must be a port number from 1 to 65535');
};
const labels = (v, p) => {
  if (!isObject(v)) throw invalid(p, 'must be a map of strings');
  for (const [k, x] of Object.entries(v)) {
    if (!/^[A-Za-z0-9]([-A-Za-z0-9_./]{0,61}[A-Za-z0-9])?$/.test(k)) throw invalid(`${p}.${k}`, 'is not a valid label key');
    if (typeof x !== 'string' || x.length > 63) throw invalid(`${p}.${k}`, 'must be a string of at most 63 characters');
  }
};
const list = (max, item) => (v, p) => {
  if (!Array.isArray(v) || !v.length || v.length > max) throw invalid(p, `must be a list of 1 to ${max} entries`);
  v.forEach((x, i) => item(x, `${p}[${i}]`));
};
/** An object with exactly these fields (a `?` suffix: optional); each checked by its function or nested shape. */
const shape = (fields) => (v, p) => {
  if (!isObject(v)) throw invalid(p, 'must be an object');
  const known = Object.fromEntries(Object.entries(fields).map(([k, c]) => [k.replace(/\?$/, ''), { check: c, optional: k.endsWith('?') }]));
  for (const k of Object.keys(v)) if (!known[k]) throw unknownField(p ? `${p}.${k}` : k);
  for (const [k, { check, optional }] of Object.entries(known)) {
    const at = p ? `${p}.${k}` : k;
    if (v[k] === undefined) {
      if (!optional) throw invalid(at, 'Required value');
      continue;
    }
    (typeof check === 'function' ? check : shape(check))(v[k], at);
  }
};

const metadata = { name: label, 'namespace?': label, 'labels?': labels, 'annotations?': labels };
const container = shape({
  name: label,
  image: str(256),
  'command?': list(32, str(1024)),
  'args?': list(64, str(1024)),
  'env?': list(64, shape({ name: str(128), value: str(4096) })),
  'ports?': list(16, shape({ containerPort: port, 'protocol?': oneOf('TCP', 'UDP'), 'name?': label })),
});
const SPECS = {
  pods: shape({ containers: list(16, container), 'restartPolicy?': oneOf('Always', 'OnFailure', 'Never') }),
  services: shape({
    'selector?': labels,
    ports: list(16, shape({ port, 'targetPort?': port, 'protocol?': oneOf('TCP', 'UDP'), 'name?': label })),
    'type?': oneOf('ClusterIP'),
  }),
};

function validate(plural, ns, body) {
  shape({ 'apiVersion?': oneOf('v1'), 'kind?': oneOf(KINDS[plural]), metadata, spec: SPECS[plural] })(body, '');
  if (body.metadata.namespace !== undefined && body.metadata.namespace !== ns)
    throw fail(400, `metadata.namespace (${body.metadata.namespace}) does not match the namespace in the request path (${ns})`);
}

// --- storage: /ultracloud/k8shost/<tenant>/<plural>/<namespace>/<name>

const prefixOf = (tenant, plural, ns) => `${K}/${tenant}/${plural}/${ns}/`;
const uid = () => {
  const h = uniqueBytes(16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
const STATUS = {
  pods: () => ({
    phase: 'Pending',
    conditions: [{ type: 'PodScheduled', status: 'False', reason: 'NoRuntime', message: 'k8shost is an API surface: no host runs pods' }],
  }),
  services: () => ({ loadBalancer: {} }),
};
/** The stored object as the API shows it: its resourceVersion is the store revision of its last change. */
const view = (value, modRevision) => ({ ...value, metadata: { ...value.metadata, resourceVersion: String(modRevision) } });

/** A refusal as Kubernetes clients read it. */
function statusOf(e) {
  const code = e.status || 500;
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: e.message,
    reason: REASONS[code] || 'InternalError',
    ...(e.field ? { details: { causes: [{ field: e.field, message: e.message }] } } : {}),
    code,
  };
}

const pathOf = (p) => {
  for (const k of ['ns', 'name']) if (p[k] !== undefined && !DNS_LABEL.test(p[k])) throw fail(400, `${k === 'ns' ? 'namespace' : 'name'} "${p[k]}" is not a valid RFC 1123 label`);
  return p;
};

// --- watch: a bounded snapshot stream

function watchSeconds(url) {
  const raw = url.searchParams.get('timeoutSeconds');
  if (raw === null) return 60;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WATCH_SECONDS) throw invalid('timeoutSeconds', `must be an integer from 1 to ${MAX_WATCH_SECONDS}`);
  return n;
}

async function watch(res, tenant, plural, ns, url) {
  const seconds = watchSeconds(url);
  const rv = url.searchParams.get('resourceVersion');
  if (rv && !/^\d+$/.test(rv)) throw invalid('resourceVersion', 'must be a resource version from an earlier list or watch');
  const prefix = prefixOf(tenant, plural, ns);
  // No resource version (or "0"): the current state first, as ADDED events. Otherwise only what changed after it.
  const snap = rv && rv !== '0' ? { items: [], revision: Number(rv) } : await cf.snapshot(prefix);
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.flushHeaders(); // the client learns the watch is open even when there is nothing to send yet
  const send = (type, object) => res.write(`${JSON.stringify({ type, object })}\n`);
  for (const x of snap.items) send('ADDED', view(x.value, x.modRevision));
  const stream = cf.events(prefix, snap.revision + 1, (e) => {
    if (e.type === 'delete') send('DELETED', view(e.value, e.modRevision));
    else send(e.createRevision === e.modRevision ? 'ADDED' : 'MODIFIED', view(e.value, e.modRevision));
  });
  const timer = setTimeout(() => stream.close(), seconds * 1000);
  res.on('close', () => stream.close()); // the client left (or the stream ended)
  const why = await stream.ended;
  clearTimeout(timer);
  if (why !== 'closed') send('ERROR', statusOf(fail(/compacted/.test(why) ? 410 : 503, why)));
  res.end();
}

// --- translation: what a pod or service becomes in prismnet, fiberlb and flashdns, made with the caller's token

const tokenOf = (req) => req.headers.authorization.slice('Bearer '.length);
const itemsOf = async (tenant, plural, ns) => (await cf.snapshot(prefixOf(tenant, plural, ns))).items.map((x) => x.value);
const created = {
  pods: async (token, tenant, ns, pod) => translate.podCreated(token, pod, await itemsOf(tenant, 'services', ns)),
  services: async (token, tenant, ns, svc) => translate.serviceCreated(token, tenant, ns, svc, await itemsOf(tenant, 'pods', ns)),
};
const deleted = {
  pods: async (token, tenant, ns, pod) => translate.podDeleted(token, pod, await itemsOf(tenant, 'services', ns)),
  services: async (token, _tenant, _ns, svc) => translate.serviceDeleted(token, svc),
};

// --- routes

const routes = {
  'GET /health': async () => [200, { status: 'ok', service: 'k8shost', node: process.env.NODE_NAME, objects: await cf.count(`${K}/`) }],
};
for (const [plural, kind] of Object.entries(KINDS)) {
  routes[`GET /api/v1/namespaces/:ns/${plural}`] = guarded(async (_r, p, _b, url, { tenant }, res) => {
    const { ns } = pathOf(p);
    const w = url.searchParams.get('watch');
    if (w === '1' || w === 'true') return watch(res, tenant, plural, ns, url);
    const snap = await cf.snapshot(prefixOf(tenant, plural, ns));
    return [200, { apiVersion: 'v1', kind: `${kind}List`, metadata: { resourceVersion: String(snap.revision) }, items: snap.items.map((x) => view(x.value, x.modRevision)) }];
  });
  routes[`POST /api/v1/namespaces/:ns/${plural}`] = guarded(async (req, p, body, _u, { tenant }) => {
    const { ns } = pathOf(p);
    validate(plural, ns, body);
    const { name } = body.metadata;
    const key = `${prefixOf(tenant, plural, ns)}${name}`;
    if (await cf.get(key)) throw fail(409, `${plural} "${name}" already exists`);
    const obj = {
      apiVersion: 'v1',
      kind,
      metadata: { ...body.metadata, name, namespace: ns, uid: uid(), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
      spec: body.spec,
      status: STATUS[plural](),
    };
    const translated = await created[plural](tokenOf(req), tenant, ns, obj);
    if (!(await cf.create(key, translated))) {
      await deleted[plural](tokenOf(req), tenant, ns, translated).catch(() => {});
      throw fail(409, `${plural} "${name}" already exists`);
    }
    const got = await cf.get(key);
    return [201, view(got.value, got.modRevision)];
  });
  routes[`GET /api/v1/namespaces/:ns/${plural}/:name`] = guarded(async (_r, p, _b, _u, { tenant }) => {
    const { ns, name } = pathOf(p);
    const got = await cf.get(`${prefixOf(tenant, plural, ns)}${name}`);
    if (!got) throw fail(404, `${plural} "${name}" not found`);
    return [200, view(got.value, got.modRevision)];
  });
  routes[`DELETE /api/v1/namespaces/:ns/${plural}/:name`] = guarded(async (req, p, _b, _u, { tenant }) => {
    const { ns, name } = pathOf(p);
    const key = `${prefixOf(tenant, plural, ns)}${name}`;
    const got = await cf.get(key);
    if (!got) throw fail(404, `${plural} "${name}" not found`);
    // What it became goes first: if that fails, the object stays, and deleting it again retries.
    await deleted[plural](tokenOf(req), tenant, ns, got.value);
    if (!(await cf.remove(key, got.modRevision))) throw fail(409, `${plural} "${name}" changed meanwhile; retry`);
    return [200, view(got.value, got.modRevision)];
  });
}

serve('k8shost', PORT, routes, { errorBody: statusOf });
