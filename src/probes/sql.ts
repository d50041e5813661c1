import type { Cluster } from '../cluster/cluster.js';

/** flaredb in the lab is PostgreSQL: run SQL on a node's local server (psql over the pooled SSH). */
export async function sql(cluster: Cluster, node: string, database: string, statement: string): Promise<string[]> {
  const out = await cluster.sh(node, `psql -h 127.0.0.1 -U postgres -d ${database} -AtX -v ON_ERROR_STOP=1 -f -`, {
    stdin: statement,
    timeoutMs: 30000,
  });
  return out.split('\n').filter((l) => l.length > 0);
}

export const sqlLiteral = (s: string): string => `'${s.replace(/'/g, "''")}'`;
