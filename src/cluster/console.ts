import { promises as fs } from 'node:fs';

/** Last `lines` lines of a console log (vm.log), without control characters that garble terminals. */
export async function consoleTail(file: string, lines = 40): Promise<string> {
  try {
    const fh = await fs.open(file, 'r');
    try {
      const { size } = await fh.stat();
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, size - len);
      // eslint-disable-next-line no-control-regex
      const text = buf
        .toString('utf8')
        .replace(/\r/g, '')
        .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
        .replace(/[\x00-\x08\x0b-\x1f]/g, '');
      return text.split('\n').slice(-lines).join('\n');
    } finally {
      await fh.close();
    }
  } catch {
    return '(no console log)';
  }
}
