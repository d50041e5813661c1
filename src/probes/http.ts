import { CheckFailed, errorMessage } from '../core/errors.js';

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

export interface HttpOptions {
  /** JSON body (sets content-type). */
  body?: unknown;
  /** Raw body (protobuf, files). */
  raw?: Uint8Array;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * One HTTP request from the host: to an exposed port (QEMU's forward) or to a guest service
 * through an SSH-forwarded port (`Node.url`). A transport failure names the URL.
 */
export async function http(method: string, url: string, o: HttpOptions = {}): Promise<HttpReply> {
  const headers: Record<string, string> = { ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers };
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: (o.raw ?? (o.body !== undefined ? JSON.stringify(o.body) : undefined)) as RequestInit['body'],
      signal: AbortSignal.timeout(o.timeoutMs ?? 15_000),
    });
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    throw new CheckFailed(`${method} ${url}: ${errorMessage(err)}${cause ? ` (${errorMessage(cause)})` : ''}`);
  }
  const text = await res.text();
  return { status: res.status, text, json: parse(text) };
}
