/**
 * Prometheus remote-write without dependencies: the WriteRequest protobuf (prompb) encoded by
 * hand and wrapped in a snappy block made of literals only (valid snappy, just uncompressed),
 * as the seeds' nightlight_remote_write.py sent it.
 */
function varint(n: number | bigint): number[] {
  let v = BigInt(n);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number((v & 0x7fn) | 0x80n));
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

const bytesField = (field: number, data: Uint8Array): number[] => [...varint((field << 3) | 2), ...varint(data.length), ...data];
const strField = (field: number, s: string) => bytesField(field, Buffer.from(s, 'utf8'));

export interface Sample {
  labels: Record<string, string>;
  value: number;
  timestampMs: number;
}

/** WriteRequest{ timeseries: [TimeSeries{ labels: [Label{name,value}], samples: [Sample{value: double, timestamp: int64}] }] } */
export function encodeWriteRequest(samples: Sample[]): Uint8Array {
  const out: number[] = [];
  for (const s of samples) {
    const ts: number[] = [];
    // Prometheus wants labels sorted by name, __name__ first.
    for (const [k, v] of Object.entries(s.labels).sort(([a], [b]) => (a < b ? -1 : 1)))
      ts.push(...bytesField(1, Uint8Array.from([...strField(1, k), ...strField(2, v)])));
    const dbl = Buffer.alloc(8);
    dbl.writeDoubleLE(s.value);
    const sample = [0x09, ...dbl, ...varint(0x10), ...varint(s.timestampMs)];
    ts.push(...bytesField(2, Uint8Array.from(sample)));
    out.push(...bytesField(1, Uint8Array.from(ts)));
  }
  return Uint8Array.from(out);
}

/** Snappy block format: varint(uncompressed length), then literal elements of at most 60 bytes tag-inline or longer with 1-4 length bytes. */
export function snappyLiterals(data: Uint8Array): Uint8Array {
  const out: number[] = [...varint(data.length)];
  for (let off = 0; off < data.length; off += 65536) {
    const chunk = data.subarray(off, Math.min(off + 65536, data.length));
    const n = chunk.length - 1;
    if (n < 60) out.push(n << 2);
    else if (n < 0x100) out.push(60 << 2, n);
    else out.push(61 << 2, n & 0xff, n >> 8);
    out.push(...chunk);
  }
  return Uint8Array.from(out);
}

export function remoteWriteBody(samples: Sample[]): Uint8Array {
  return snappyLiterals(encodeWriteRequest(samples));
}

export const REMOTE_WRITE_HEADERS = {
  'content-type': 'application/x-protobuf',
  'content-encoding': 'snappy',
  'x-prometheus-remote-write-version': '0.1.0',
};
