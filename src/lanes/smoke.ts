import { randomBytes } from 'node:crypto';
import type { Cluster } from '../cluster/cluster.js';
import { waitForNode } from '../cluster/readiness.js';
import type { ServiceContract } from '../config/profile.js';
import { CheckFailed } from '../core/errors.js';
import type { RunRecord, StepContext } from '../core/run-record.js';
import { seconds } from '../core/time.js';
import { FaultLog } from '../faults/fault.js';
import type { Injection } from '../faults/injections.js';
import { powerCutFault } from '../faults/power.js';
import { EtcdProbe } from '../probes/etcd.js';
import { eventually } from '../probes/eventually.js';
import { guestHttp, hostHttp } from '../probes/http.js';
import { REMOTE_WRITE_HEADERS, remoteWriteBody } from '../probes/remote-write.js';
import { sql, sqlLiteral } from '../probes/sql.js';
import { probeSurfaces } from '../probes/surfaces.js';
import { tcpConnect } from '../probes/tcp.js';
import { type LaneStep, runSteps } from './lane.js';

/** The smoke lane: readiness, formation, surfaces, replication, iam, entrypoints, a power cut. */
export const SMOKE_STEPS = [
  'readiness',
  'control-plane-formation',
  'protocol-surfaces',
  'replicated-state',
  'iam-tokens',
  'external-entrypoints',
  'fault-injection',
] as const;

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

function service(cluster: Cluster, name: string): ServiceContract {
  const c = cluster.profile.services[name];
  if (!c) throw new CheckFailed(`profile ${cluster.profile.name} has no "${name}" service in its contract`);
  return c;
}

function probe<T>(c: ServiceContract, key: string, fallback: T): T {
  return (c.probes[key] as T | undefined) ?? fallback;
}

function portOf(c: ServiceContract, name: string): number {
  const p = c.ports.find((x) => x.name === name);
  if (!p) throw new CheckFailed(`service contract has no port "${name}"`);
  return p.port;
}

export interface SmokeOptions {
  /** Before `readiness` runs its checks (fresh-smoke boots the cluster here). */
  boot?: (ctx: StepContext) => Promise<string>;
  injections?: Injection[];
  readinessTimeoutMs?: number;
}

export async function runSmoke(cluster: Cluster, rec: RunRecord, opts: SmokeOptions = {}) {
  const faults = new FaultLog(rec);
  const runId = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const nodes = cluster.profile.nodes.map((n) => n.name);
  const withRole = (role: string) => cluster.profile.nodes.filter((n) => n.roles.includes(role)).map((n) => n.name);
  const chainfireC = service(cluster, 'chainfire');
  const flaredbC = service(cluster, 'flaredb');
  const cfNodes = withRole(chainfireC.roles[0]!);
  const etcd = new EtcdProbe(cluster, probe(chainfireC, 'clientPort', 2379));
  const primary = probe(flaredbC, 'primary', cfNodes[0]!);
  const db = probe(flaredbC, 'database', 'flaredb');
  const table = probe(flaredbC, 'table', 'ultracloud_kv');
  const standbys = withRole(flaredbC.roles[0]!).filter((n) => n !== primary);
  /** Member id -> node name, from a snapshot taken while every member is up. */
  let memberNames = new Map<string, string>();
  const nameOf = (memberId: string) => memberNames.get(memberId) ?? `member ${memberId}`;
  const state = { chainfireKey: `/ultracloud/smoke/${runId}`, flaredbKey: `smoke-${runId}`, value: `v-${runId}` };

  const steps: LaneStep[] = [
    {
      name: 'readiness',
      run: async (ctx) => {
        const booted = opts.boot ? `${await opts.boot(ctx)}; ` : '';
        const times: Record<string, number> = {};
        for (const n of nodes)
          if (!(await cluster.pid(n))) throw new CheckFailed(`${n} is not running (start the cluster first, or use fresh-smoke)`);
        await Promise.all(nodes.map(async (n) => (times[n] = await waitForNode(cluster, n, opts.readinessTimeoutMs ?? 300_000))));
        await ctx.evidence(
          'readiness.json',
          json(Object.fromEntries(nodes.map((n) => [n, { units: cluster.units(n), checkedMs: times[n] }]))),
        );
        return `${booted}${nodes.length} nodes ready with ${nodes.reduce((a, n) => a + cluster.units(n).length, 0)} expected units active`;
      },
    },
    {
      name: 'control-plane-formation',
      run: async (ctx) => {
        const want = probe(chainfireC, 'members', cfNodes.length);
        const members = await etcd.members(cfNodes[0]!);
        memberNames = new Map(members.map((m) => [m.id, m.name]));
        const statuses = await eventually('chainfire members agree on one leader', 30_000, async () => {
          const st = await Promise.all(cfNodes.map(async (n) => ({ node: n, ...(await etcd.status(n)) })));
          const leaders = new Set(st.map((s) => s.leader));
          if (leaders.size !== 1 || st[0]!.leader === '0')
            throw new CheckFailed(`members see different leaders: ${st.map((s) => `${s.node}->${s.leader}`).join(', ')}`);
          return st;
        });
        await ctx.evidence('chainfire-members.json', json({ members, statuses }));
        if (members.length !== want)
          throw new CheckFailed(`chainfire has ${members.length} members (${members.map((m) => m.name).join(', ')}), expected ${want}`);
        if (!memberNames.has(statuses[0]!.leader))
          throw new CheckFailed(
            `chainfire leader ${statuses[0]!.leader} is not in the member list (${members.map((m) => `${m.name}=${m.id}`).join(', ')})`,
          );
        const leader = nameOf(statuses[0]!.leader);

        const want2 = probe(flaredbC, 'standbys', standbys.length);
        const repl = await eventually(`flaredb primary ${primary} streams to ${want2} standbys`, 30_000, async () => {
          const rows = await sql(cluster, primary, db, 'select application_name, client_addr, state from pg_stat_replication order by 1');
          const streaming = rows.filter((r) => r.split('|')[2] === 'streaming');
          if (streaming.length !== want2) {
            const missing = standbys.filter((s) => !streaming.some((r) => r.startsWith(`${s}|`)));
            throw new CheckFailed(
              `primary ${primary} streams to ${streaming.length} standby(s) [${streaming.map((r) => r.split('|')[0]).join(', ')}], expected ${want2}; not streaming: ${missing.join(', ') || '?'}`,
            );
          }
          return rows;
        });
        const recovery = await Promise.all(
          standbys.map(async (s) => [s, (await sql(cluster, s, db, 'select pg_is_in_recovery()'))[0]] as const),
        );
        await ctx.evidence(
          'flaredb-replication.txt',
          `pg_stat_replication on ${primary}:\n${repl.join('\n')}\n\npg_is_in_recovery:\n${recovery.map(([s, r]) => `${s} ${r}`).join('\n')}\n`,
        );
        const notStandby = recovery.filter(([, r]) => r !== 't');
        if (notStandby.length) throw new CheckFailed(`flaredb: ${notStandby.map(([s]) => s).join(', ')} not in recovery (not a standby)`);
        return `chainfire: ${members.length} members, leader ${leader} (term ${statuses[0]!.raftTerm}); flaredb: ${primary} streaming to ${standbys.join(', ')}`;
      },
    },
    {
      name: 'protocol-surfaces',
      run: async (ctx) => {
        // Judged over a short window: one sample on a TCG guest under load can miss a busy service.
        let attempts = 0;
        let results: Awaited<ReturnType<typeof probeSurfaces>> = [];
        const check = async () => {
          attempts++;
          results = (await Promise.all(nodes.map((n) => probeSurfaces(cluster, n)))).flat();
          // And from the host, every exposed port through its forward.
          for (const n of nodes) {
            const rec = await cluster.record(n);
            for (const [svc, c] of Object.entries(cluster.profile.services)) {
              for (const p of c.ports.filter((x) => x.expose && rec.ports[`${svc}-${x.name}`])) {
                const hostPort = rec.ports[`${svc}-${p.name}`]!.host;
                const health = c.health?.kind === 'http' && c.health.port === p.port ? c.health : null;
                const url = p.protocol === 'http' ? `http://127.0.0.1:${hostPort}${health?.path ?? '/'}` : `tcp://127.0.0.1:${hostPort}`;
                const ok = (status: number) => (health ? status === health.expectStatus : status < 500);
                const r = await (p.protocol === 'http'
                  ? hostHttp('GET', url).then((x) => ({ ok: ok(x.status), detail: `${x.status}` }))
                  : tcpConnect(hostPort).then(() => ({ ok: true, detail: 'open' }))
                ).catch((e: Error) => ({ ok: false, detail: e.message }));
                results.push({ node: n, service: svc, check: `host ${url}`, ...r });
              }
            }
          }
          const bad = results.filter((r) => !r.ok);
          if (bad.length)
            throw new CheckFailed(
              `${bad.length} of ${results.length} surface checks failed: ${bad.map((b) => `${b.node} ${b.service} ${b.check} (${b.detail})`).join('; ')}`,
            );
        };
        await eventually('every declared surface answers', 45_000, check, 3000).finally(() =>
          ctx.evidence('surfaces.json', json({ attempts, results })),
        );
        const metrics = results.filter((r) => r.service === 'nightlight').length;
        return `${results.length} checks passed on ${new Set(results.map((r) => r.node)).size} nodes (${metrics} nightlight/metrics)${attempts > 1 ? ` after ${attempts} attempts` : ''}`;
      },
    },
    {
      name: 'replicated-state',
      run: async (ctx) => {
        const writer = cfNodes[0]!;
        const t0 = Date.now();
        await etcd.put(writer, state.chainfireKey, state.value);
        const cf: Record<string, number> = {};
        for (const n of cfNodes.filter((x) => x !== writer))
          await eventually(
            `chainfire value written on ${writer} readable on ${n}`,
            30_000,
            async () => {
              const v = await etcd.get(n, state.chainfireKey);
              if (v !== state.value) throw new CheckFailed(`${n} has ${JSON.stringify(v)}`);
              cf[n] = Date.now() - t0;
            },
            250,
          );
        const t1 = Date.now();
        await sql(cluster, primary, db, `insert into ${table} (k, v) values (${sqlLiteral(state.flaredbKey)}, ${sqlLiteral(state.value)})`);
        const fd: Record<string, number> = {};
        for (const n of standbys)
          await eventually(
            `flaredb row written on ${primary} readable on ${n}`,
            30_000,
            async () => {
              const rows = await sql(cluster, n, db, `select v from ${table} where k = ${sqlLiteral(state.flaredbKey)}`);
              if (rows[0] !== state.value) throw new CheckFailed(`${n} returns ${JSON.stringify(rows)}`);
              fd[n] = Date.now() - t1;
            },
            250,
          );
        await ctx.evidence(
          'replication.json',
          json({
            chainfireKey: state.chainfireKey,
            flaredbKey: state.flaredbKey,
            value: state.value,
            chainfireConvergedMs: cf,
            flaredbConvergedMs: fd,
          }),
        );
        return `chainfire ${writer} -> ${Object.entries(cf)
          .map(([n, ms]) => `${n} ${ms} ms`)
          .join(', ')}; flaredb ${primary} -> ${Object.entries(fd)
          .map(([n, ms]) => `${n} ${ms} ms`)
          .join(', ')}`;
      },
    },
    {
      name: 'iam-tokens',
      run: async (ctx) => {
        const iam = service(cluster, 'iam');
        const port = portOf(iam, 'api');
        const issuer = withRole(iam.roles[0]!)[0]!;
        const verifier = withRole(iam.roles[0]!).at(-1)!;
        const local = `http://127.0.0.1:${port}`; // each node's own iam, reached over its SSH session
        const issued = await guestHttp(cluster, issuer, 'POST', `${local}${probe(iam, 'issuePath', '/v1/tokens')}`, {
          body: { subject: 'smoke', scopes: ['credit:reserve'], ttlSeconds: 600 },
        });
        if (issued.status !== 201) throw new CheckFailed(`iam on ${issuer} did not issue a token: ${issued.status} ${issued.text}`);
        const token = (issued.json as { token: string; keyId: string }).token;
        const verifyPath = probe(iam, 'verifyPath', '/v1/verify');
        const ok = await guestHttp(cluster, verifier, 'POST', `${local}${verifyPath}`, { body: { token } });
        const [h, p, s] = token.split('.');
        const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
        const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'admin' })).toString('base64url')}.${s}`;
        const bad = await guestHttp(cluster, verifier, 'POST', `${local}${verifyPath}`, { body: { token: tampered } });
        await ctx.evidence(
          'iam.json',
          json({
            issuer,
            verifier,
            issued: issued.json,
            verify: { status: ok.status, body: ok.json },
            tampered: { status: bad.status, body: bad.json },
          }),
        );
        if (ok.status !== 200) {
          const why = (ok.json as { reason?: string; keyId?: string } | undefined) ?? {};
          throw new CheckFailed(
            `token issued on ${issuer} (key ${(issued.json as { keyId: string }).keyId}) was refused by ${verifier} (key ${why.keyId}): ${why.reason ?? ok.text}`,
          );
        }
        if (bad.status !== 401) throw new CheckFailed(`a tampered token was accepted by ${verifier} (status ${bad.status})`);
        return `token issued on ${issuer} verified on ${verifier}; tampered token refused (${(bad.json as { reason: string }).reason})`;
      },
    },
    {
      name: 'external-entrypoints',
      run: async (ctx) => {
        const gwNode = withRole(service(cluster, 'apigateway').roles[0]!)[0]!;
        const gw = `http://127.0.0.1:${await cluster.hostPort(gwNode, 'apigateway-http')}`;
        const nl = `http://127.0.0.1:${await cluster.hostPort(gwNode, 'nightlight-http')}`;
        const ev: Record<string, unknown> = { gateway: gw, nightlight: nl };
        const expect = (what: string, got: number, want: number, text: string) => {
          ev[what] = { status: got, body: text.slice(0, 500) };
          if (got !== want) throw new CheckFailed(`${what}: expected HTTP ${want}, got ${got}: ${text.slice(0, 300)}`);
        };
        const health = await hostHttp('GET', `${gw}/iam/health`);
        expect('apigateway -> iam /health', health.status, 200, health.text);
        const tok = await hostHttp('POST', `${gw}/iam/v1/tokens`, { body: { subject: 'smoke-external', ttlSeconds: 600 } });
        expect('apigateway -> iam token issue', tok.status, 201, tok.text);
        const token = (tok.json as { token: string }).token;
        const kv = await hostHttp('GET', `${gw}/flaredb/v1/kv/${state.flaredbKey}`);
        expect('apigateway -> flaredb read of the replicated row', kv.status, 200, kv.text);

        const metric = 'ultracloud_smoke_probe';
        const value = 42 + Math.round(Math.random() * 1000) / 10;
        const body = remoteWriteBody([{ labels: { __name__: metric, run: runId }, value, timestampMs: Date.now() }]);
        const nightlight = service(cluster, 'nightlight');
        const wr = await hostHttp('POST', `${nl}${probe(nightlight, 'remoteWritePath', '/api/v1/write')}`, {
          raw: body,
          headers: REMOTE_WRITE_HEADERS,
        });
        ev['nightlight remote-write'] = { status: wr.status, bytes: body.length, body: wr.text };
        if (wr.status !== 204 && wr.status !== 200)
          throw new CheckFailed(`nightlight refused a remote-write sample: ${wr.status} ${wr.text}`);
        const q = `${metric}{run="${runId}"}`;
        const got = await eventually(`nightlight query returns the remote-written sample`, 30_000, async () => {
          const r = await hostHttp('GET', `${nl}${probe(nightlight, 'queryPath', '/api/v1/query')}?query=${encodeURIComponent(q)}`);
          const v = (r.json as { data?: { result?: { value: [number, string] }[] } })?.data?.result?.[0]?.value?.[1];
          if (v === undefined) throw new CheckFailed(`query ${q} returned ${r.text.slice(0, 200)}`);
          return Number(v);
        });
        ev['nightlight query'] = { query: q, value: got };
        if (got !== value) throw new CheckFailed(`nightlight returned ${got} for ${q}, wrote ${value}`);

        const tenant = `smoke-${runId}`;
        const res = await hostHttp('POST', `${gw}/credit/v1/reservations`, {
          body: { tenant, amount: 10 },
          headers: { authorization: `Bearer ${token}` },
        });
        expect('creditservice reservation with a valid token', res.status, 201, res.text);
        const noTok = await hostHttp('POST', `${gw}/credit/v1/reservations`, { body: { tenant, amount: 10 } });
        expect('creditservice reservation without a token', noTok.status, 401, noTok.text);
        const quota = await hostHttp('GET', `${gw}/credit/v1/quotas/${tenant}`);
        expect('creditservice quota', quota.status, 200, quota.text);
        if ((quota.json as { reserved: number }).reserved !== 10)
          throw new CheckFailed(`creditservice quota shows ${quota.text}, expected 10 reserved`);
        const over = await hostHttp('POST', `${gw}/credit/v1/reservations`, {
          body: { tenant, amount: 1000 },
          headers: { authorization: `Bearer ${token}` },
        });
        expect('creditservice refuses a reservation over quota', over.status, 409, over.text);
        await ctx.evidence('external.json', json(ev));
        return `apigateway routes to iam and flaredb; nightlight stored and returned ${value}; creditservice reserved with a token, refused without one and over quota`;
      },
    },
    {
      name: 'fault-injection',
      run: async (ctx) => {
        const st = await etcd.status(cfNodes[0]!);
        const leader = nameOf(st.leader);
        if (!cfNodes.includes(leader)) throw new CheckFailed(`chainfire leader ${leader} is not a known control-plane node`);
        const survivors = cfNodes.filter((n) => n !== leader);
        const fault = powerCutFault(cluster, leader);
        const t0 = Date.now();
        await faults.invoke(fault, { leaderMemberId: st.leader, term: st.raftTerm });
        const elected = await eventually(
          `survivors ${survivors.join(', ')} elect a new chainfire leader`,
          60_000,
          async () => {
            const s = await etcd.status(survivors[0]!);
            if (s.leader === '0' || s.leader === st.leader) throw new CheckFailed(`${survivors[0]} still sees leader ${s.leader}`);
            return s;
          },
          500,
        );
        const newLeader = nameOf(elected.leader);
        const electedMs = Date.now() - t0;
        const key = `${state.chainfireKey}/during-fault`;
        const value = `written-while-${leader}-down`;
        await eventually(`a survivor accepts writes while ${leader} is down`, 60_000, () => etcd.put(survivors[0]!, key, value), 500);
        const writableMs = Date.now() - t0;
        rec.event('probe', 'chainfire writable without the old leader', { newLeader, electedMs, writableMs });
        const t1 = Date.now();
        await faults.heal(fault);
        const rejoinMs = Date.now() - t1;
        await eventually(
          `${leader} catches up to the value written while it was down`,
          60_000,
          async () => {
            const v = await etcd.get(leader, key);
            if (v !== value) throw new CheckFailed(`${leader} has ${JSON.stringify(v)}`);
          },
          500,
        );
        const detail = { powerCut: leader, newLeader, electedMs, writableMs, rejoinMs, caughtUpMs: Date.now() - t1 - rejoinMs };
        rec.event('probe', `${leader} caught up after restart`, detail);
        await ctx.evidence('fault.json', json(detail));
        return `power-cut leader ${leader}: ${newLeader} elected in ${seconds(electedMs)}, writes ok after ${seconds(writableMs)}; ${leader} back in ${seconds(rejoinMs)} and caught up`;
      },
    },
  ];

  const pending = [...(opts.injections ?? [])];
  return runSteps(rec, steps, {
    before: async (step) => {
      for (const inj of pending.filter((i) => i.before === step)) {
        pending.splice(pending.indexOf(inj), 1);
        await faults.invoke(inj.fault, { negativeControl: true, breaks: step });
      }
    },
    finally: () => faults.healAll(),
  });
}
