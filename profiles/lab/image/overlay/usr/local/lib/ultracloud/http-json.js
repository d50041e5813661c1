// Shared helpers for the lab's small dependency-free services (Node 18, no npm packages in the guest).
'use strict';
const http = require('node:http');

function send(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

/** An error a handler throws to answer `status` with `message` (e.g. 400 naming the field). */
const fail = (status, message) => Object.assign(new Error(message), { status });
const MAX_BODY = 1 << 20;

function readJson(req) {
  return new Promise((resolve, reject) => {
    let raw = '';
    req.on('data', (d) => {
      raw += d;
      if (raw.length > MAX_BODY) {
        reject(fail(413, `body larger than ${MAX_BODY} bytes`));
        req.destroy();
      }
    });
    req.on('end', () => {
      if (!raw) return resolve({});
      let body;
      try { body = JSON.parse(raw); } catch { return reject(fail(400, 'body is not JSON')); }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) return reject(fail(400, 'body must be a JSON object'));
      resolve(body);
    });
    req.on('error', reject);
  });
}

/**
 * Check one body field: `test(value)` true or a 400 naming the field. Returns the value, or
 * `fallback` when the field is absent and a fallback is given.
 */
function field(body, name, test, expected, fallback) {
  const v = body[name];
  if (v === undefined && fallback !== undefined) return fallback;
  if (v === undefined) throw fail(400, `${name} is required (${expected})`);
  if (!test(v)) throw fail(400, `${name} must be ${expected}, got ${JSON.stringify(v).slice(0, 80)}`);
  return v;
}

/** A body with fields outside `allowed` is a 400 naming the first of them. */
function onlyFields(body, allowed) {
  const extra = Object.keys(body).find((k) => !allowed.includes(k));
  if (extra !== undefined) throw fail(400, `unknown field "${extra}" (allowed: ${allowed.join(', ')})`);
  return body;
}

/**
 * routes: { 'GET /health': async (req, params, body, url, res) => [status, json] }, with :name
 * path params; a handler that answers on `res` itself (a stream) returns nothing. A thrown error
 * (`fail`) is answered with its status and `errorBody(error)`. Returns the request listener, for
 * any server (plain HTTP through `serve`, or an HTTPS one).
 */
function router(routes, { errorBody = (e) => ({ error: e.message }) } = {}) {
  const table = Object.entries(routes).map(([k, fn]) => {
    const [method, pattern] = k.split(' ');
    const keys = [];
    const re = new RegExp('^' + pattern.replace(/:(\w+)/g, (_, n) => (keys.push(n), '([^/]+)')) + '$');
    return { method, re, keys, fn };
  });
  return async (req, res) => {
    const url = new URL(req.url, 'http://x');
    for (const r of table) {
      const m = r.method === req.method && r.re.exec(url.pathname);
      if (!m) continue;
      const params = Object.fromEntries(r.keys.map((k, i) => [k, decodeURIComponent(m[i + 1])]));
      try {
        const body = req.method === 'GET' ? {} : await readJson(req);
        const answer = await r.fn(req, params, body, url, res);
        if (answer) send(res, answer[0], answer[1]); // none: the handler streamed its own answer
        return;
      } catch (e) {
        if (res.headersSent) return res.destroy(e);
        return send(res, e.status || 500, errorBody(e));
      }
    }
    send(res, 404, { error: `no route ${req.method} ${url.pathname}` });
  };
}

/** An HTTP server on `port` for `routes` (see `router`). */
function serve(name, port, routes, options) {
  const server = http.createServer(router(routes, options));
  // A client that half-closes after its request (busybox nc in the inner guests) still gets the
  // answer: by default Node ends such a socket at once, dropping a reply still being computed.
  server.httpAllowHalfOpen = true;
  server.listen(port, '0.0.0.0', () => console.log(`${name} listening on :${port}`));
  return server;
}

/** JSON request to another service; resolves { status, body }. */
function request(method, url, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(url, { method, headers: { 'content-type': 'application/json', ...headers }, timeout: 15000 }, (res) => {
      let raw = '';
      res.on('data', (d) => (raw += d));
      res.on('end', () => {
        let parsed = raw;
        try { parsed = raw ? JSON.parse(raw) : {}; } catch { /* keep text */ }
        resolve({ status: res.statusCode, body: parsed });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`timeout ${method} ${url}`)));
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
module.exports = { serve, router, request, sleep, send, fail, field, onlyFields };
