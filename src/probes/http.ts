import type { Cluster } from '../cluster/cluster.js';
import { CheckFailed } from '../core/errors.js';

export interface HttpReply {
  status: number;
  text: string;
  json: unknown;
}

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

/** HTTP from the host (through a forwarded 127.0.0.1 port). */
export async function hostHttp(
  method: string,
  url: string,
  opts: { body?: unknown; raw?: Uint8Array; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpReply> {
  const headers: Record<string, string> = { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers };
  const res = await fetch(url, {
    method,
    headers,
    body: (opts.raw ?? (opts.body !== undefined ? JSON.stringify(opts.body) : undefined)) as RequestInit['body'],
    signal: AbortSignal.timeout(opts.timeoutMs ?? 15000),
  });
  const text = await res.text();
  return { status: res.status, text, json: parse(text) };
}

/**
 * HTTP from inside a guest (curl over the pooled SSH connection): reaches services that are
 * not forwarded to the host, from the node's own point of view.
 */
export async function guestHttp(
  cluster: Cluster,
  node: string,
  method: string,
  url: string,
  opts: { body?: unknown; headers?: Record<string, string>; timeoutS?: number } = {},
): Promise<HttpReply> {
  const h = Object.entries({ 'content-type': 'application/json', ...opts.headers })
    .map(([k, v]) => `-H '${k}: ${v.replace(/'/g, '')}'`)
    .join(' ');
  const data = opts.body !== undefined ? `--data-binary @-` : '';
  const cmd = `curl -sS -m ${opts.timeoutS ?? 10} -X ${method} ${h} ${data} -w '\\n%{http_code}' '${url}'`;
  const r = await cluster.exec(node, cmd, {
    stdin: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    timeoutMs: ((opts.timeoutS ?? 10) + 10) * 1000,
  });
  if (r.code !== 0) throw new CheckFailed(`${node}: ${method} ${url} failed: ${r.stderr.trim() || `curl exited ${r.code}`}`);
  const i = r.stdout.lastIndexOf('\n');
  const text = r.stdout.slice(0, i);
  return { status: Number(r.stdout.slice(i + 1)), text, json: parse(text) };
}
