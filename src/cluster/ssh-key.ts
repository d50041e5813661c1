import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { ensureWorkRoot } from '../core/work-root.js';
import { requireTools } from '../host/tools.js';

/** One ed25519 key per work root: generated once, injected into every guest at boot. */
export async function ensureHarnessKey(workRoot: string, keysDir: string): Promise<{ privateKey: string; publicKey: string }> {
  const privateKey = path.join(keysDir, 'id_ed25519');
  if (!existsSync(privateKey)) {
    await requireTools('ssh-keygen');
    await ensureWorkRoot(workRoot);
    await fs.mkdir(keysDir, { recursive: true, mode: 0o700 });
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ultracloud-harness', '-f', privateKey]);
  }
  return { privateKey, publicKey: (await fs.readFile(`${privateKey}.pub`, 'utf8')).trim() };
}
