import { describe, expect, it } from 'vitest';
import { encodeWriteRequest, snappyLiterals } from '../../src/probes/remote-write.js';

/** A reference snappy block decoder (literals and copies) to check the encoder against. */
function unsnappy(buf: Uint8Array): Uint8Array {
  let i = 0;
  let len = 0;
  for (let shift = 0; ; shift += 7) {
    const b = buf[i++]!;
    len |= (b & 0x7f) << shift;
    if (b < 0x80) break;
  }
  const out: number[] = [];
  while (i < buf.length) {
    const tag = buf[i++]!;
    if ((tag & 3) !== 0) throw new Error('copies not expected from a literal-only encoder');
    let n = tag >> 2;
    if (n === 60) n = buf[i++]!;
    else if (n === 61) n = buf[i++]! | (buf[i++]! << 8);
    n += 1;
    out.push(...buf.subarray(i, i + n));
    i += n;
  }
  expect(out.length).toBe(len);
  return Uint8Array.from(out);
}

describe('remote-write encoding', () => {
  it('wraps any payload in valid literal-only snappy blocks', () => {
    for (const size of [0, 1, 59, 60, 61, 255, 256, 300, 65536, 70000]) {
      const data = Uint8Array.from({ length: size }, (_, k) => k % 251);
      expect(Buffer.from(unsnappy(snappyLiterals(data))).equals(Buffer.from(data))).toBe(true);
    }
  });

  it('encodes a WriteRequest as prompb expects (labels sorted, double value, int64 ms)', () => {
    const bytes = encodeWriteRequest([{ labels: { run: 'r', __name__: 'm' }, value: 1.5, timestampMs: 1000 }]);
    const hex = Buffer.from(bytes).toString('hex');
    // TimeSeries(1){ Label(1){ name "__name__", value "m" } Label(1){ "run" "r" } Sample(2){ 0x09 double 1.5, 0x10 varint 1000 } }
    const label1 = '0a0d' + '0a085f5f6e616d655f5f' + '12016d';
    const label2 = '0a08' + '0a0372756e' + '120172';
    const sample = '120c' + '09000000000000f83f' + '10e807';
    const ts = label1 + label2 + sample;
    expect(hex).toBe(`0a${(ts.length / 2).toString(16)}${ts}`);
  });
});
