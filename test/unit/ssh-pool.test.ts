import { describe, expect, it } from 'vitest';
import { SshPool } from '../../src/cluster/ssh-pool.js';

describe('SshPool', () => {
  it('after close() (the run ended) it opens no connection: a wait still polling cannot hold the CLI open', async () => {
    const pool = new SshPool();
    pool.close();
    const t = { node: 'node01', port: 1, privateKey: '/nonexistent', hostKeyFile: '/nonexistent' };
    await expect(pool.exec(t, 'true')).rejects.toThrow(/node01: SSH connections are closed \(the run ended\)/);
  });
});
