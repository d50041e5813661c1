import type { Node } from '../cluster/node.js';
import { type HealthProbe, type LoadedProfile, servicesOn } from '../config/profile.js';
import { shellQuote } from '../core/shell.js';

export interface SurfaceResult {
  node: string;
  service: string;
  check: string;
  ok: boolean;
  detail: string;
}

function checkCommand(kind: 'tcp' | 'udp' | 'http', port: number, path = '/', expect = 200): string {
  switch (kind) {
    case 'tcp':
      return `timeout 5 bash -c '</dev/tcp/127.0.0.1/${port}' 2>&1 && echo open`;
    case 'udp': // no handshake to try: a bound socket is what can be proven without the protocol
      return `ss -Hlun "sport = :${port}" | grep -q . && echo bound`;
    case 'http':
      return `code=$(curl -s -o /dev/null -m 8 -w '%{http_code}' ${shellQuote(`http://127.0.0.1:${port}${path}`)}); echo "$code"; [ "$code" = ${expect} ]`;
  }
}

function healthCommand(h: HealthProbe): string {
  if (h.kind === 'http') return checkCommand('http', h.port, h.path, h.expectStatus);
  if (h.kind === 'tcp') return checkCommand('tcp', h.port);
  return `${h.command} && echo ok`; // the profile's own health command: a script by definition
}

/**
 * Every declared port and health probe of every service placed on the node, checked from the
 * node itself in one SSH round trip (one shell script, one line of results per check).
 */
export async function probeSurfaces(profile: LoadedProfile, node: Node): Promise<SurfaceResult[]> {
  const checks: { service: string; check: string; cmd: string }[] = [];
  for (const [svc, c] of servicesOn(profile, node.spec)) {
    for (const p of c.ports) {
      const l4 = p.protocol === 'udp' ? 'udp' : 'tcp';
      checks.push({ service: svc, check: `${l4}:${p.port} (${p.name})`, cmd: checkCommand(l4, p.port) });
    }
    if (c.health) {
      const what =
        c.health.kind === 'command'
          ? c.health.command
          : `${c.health.kind}:${c.health.port}${c.health.kind === 'http' ? c.health.path : ''}`;
      checks.push({ service: svc, check: `health ${what}`, cmd: healthCommand(c.health) });
    }
  }
  if (checks.length === 0) return [];
  // Bash builtins only around each check: under TCG every extra fork costs tens of milliseconds.
  const script = checks
    .map((c, i) => `out=$( { ${c.cmd}; } 2>&1 ); rc=$?; out=\${out//$'\\n'/ }; echo "${i} $rc \${out:0:200}"`)
    .join('\n');
  const r = await node.exec(script, { timeoutMs: 120_000 });
  const lines = new Map(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => {
        const [i, code, ...rest] = l.split(' ');
        return [Number(i), { code: Number(code), text: rest.join(' ') }];
      }),
  );
  return checks.map((c, i) => {
    const l = lines.get(i);
    return { node: node.name, service: c.service, check: c.check, ok: l?.code === 0, detail: l ? l.text : 'no result' };
  });
}
