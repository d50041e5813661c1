import { z } from 'zod';

/**
 * A profile is data: the cluster topology plus the service contract lanes speak to.
 * `lab` fulfils the contract with Debian engines; `ultracloud` with the real NixOS services.
 */
const name = z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, 'lower-case letters, digits and dashes, starting with a letter');
const port = z.number().int().min(1).max(65535);
const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);
const ipv4 = z.string().regex(IPV4, 'an IPv4 address like 10.100.0.11 (no leading zeros)');
/** systemd unit names go into guest shells (quoted), but nothing outside systemd's own alphabet is accepted. */
const unitName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9@._:-]*\.(service|socket|target|timer|mount)$/, 'a systemd unit name such as chainfire.service');

export const PortSpec = z
  .strictObject({
    name,
    port,
    protocol: z.enum(['tcp', 'udp', 'http']).default('tcp'),
    /** Forward this port from 127.0.0.1 on the host (the harness picks the host port). */
    expose: z.boolean().default(false),
  })
  .refine((p) => !(p.expose && p.protocol === 'udp'), {
    message: 'only TCP ports can be forwarded to the host (expose with protocol udp)',
    path: ['expose'],
  });
export type PortSpec = z.infer<typeof PortSpec>;

export const HealthProbe = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('http'), port, path: z.string().startsWith('/'), expectStatus: z.number().int().default(200) }),
  z.strictObject({ kind: z.literal('tcp'), port }),
  z.strictObject({ kind: z.literal('command'), command: z.string().min(1) }),
]);
export type HealthProbe = z.infer<typeof HealthProbe>;

export const ServiceContract = z.strictObject({
  description: z.string().optional(),
  /** The systemd unit that plays this service on a node. */
  unit: unitName,
  /** Which nodes run it: nodes having any of these roles ("*" = every node). */
  roles: z.array(z.string()).min(1),
  ports: z.array(PortSpec).default([]),
  health: HealthProbe.optional(),
  /**
   * A slow starter (Swift's Python servers under TCG) kept off the boot's critical path: its node's
   * role starts it once boot is done, readiness does not wait for it, and the lanes that use it do
   * (ServiceClient.ready) within this deadline.
   */
  deferred: z.strictObject({ readyWithinSec: z.number().int().min(1).max(3600) }).optional(),
  /** Parameters of the service's contract beyond unit and ports; checked by the service's module (src/services/<name>.ts). */
  params: z.record(z.string(), z.unknown()).default({}),
});
export type ServiceContract = z.infer<typeof ServiceContract>;

export const NodeSpec = z.strictObject({
  name,
  roles: z.array(z.string().min(1)).min(1),
  /** Address on the cluster (data) network. */
  ip: ipv4,
  memoryMiB: z.number().int().min(128).max(65536).optional(),
  vcpus: z.number().int().min(1).max(64).optional(),
  /** Nodes that must be ready before this one boots; defines the boot waves. */
  dependsOn: z.array(name).default([]),
  /** Extra guest TCP ports to forward from 127.0.0.1 on the host. */
  forwards: z.array(z.strictObject({ name, port })).default([]),
});
export type NodeSpec = z.infer<typeof NodeSpec>;

export const LabImageSource = z.strictObject({
  source: z.literal('lab'),
  /** Directory (relative to the profile file) holding recipe.json and overlay/. */
  recipe: z.string().min(1),
});

/** A dotted flake attribute path; names may be quoted ("x.y") and use {node}. */
const attrPath = z
  .string()
  .regex(
    /^([A-Za-z0-9_'{}-]+|"[^"]+")(\.([A-Za-z0-9_'{}-]+|"[^"]+"))*$/,
    'a dotted attribute path such as packages.x86_64-linux.{node}-vm',
  );

export const NixImageSource = z.strictObject({
  source: z.literal('nix'),
  /** Flake reference (github:..., git+file:..., path:...) or a directory relative to the profile file. */
  flake: z.string().min(1),
  /**
   * Attribute per node, `{node}` replaced by the node name, e.g. "packages.x86_64-linux.{node}-vm".
   * Each output is a directory: kernel, initrd (optional), cmdline (optional), disk.qcow2 (optional).
   */
  attribute: attrPath.refine(
    (a) => a.includes('{node}') && !a.split('.')[0]!.includes('{node}'),
    'must contain {node}, after the first component (e.g. packages.x86_64-linux.{node}-vm)',
  ),
  /** More outputs the guards evaluate and build (installer ISO, storage profile nodes, helper images). */
  guards: z.array(attrPath).default([]),
  /** Flake inputs to override, e.g. { "ultracloud": "path:/src/ultracloud" } (env ULTRACLOUD_MONOREPO overrides "ultracloud"). */
  overrideInputs: z.record(z.string(), z.string()).default({}),
});
export type NixImageSource = z.infer<typeof NixImageSource>;

/** How a booted node proves it is ready: SSH plus its units (kola), or a marker line on its console. */
export const Readiness = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('ssh-units') }),
  z.strictObject({
    kind: z.literal('console-marker'),
    /** Text the node prints on its serial console once up; `{node}` is replaced by the node name. */
    marker: z.string().min(1),
  }),
]);
export type Readiness = z.infer<typeof Readiness>;

/** The structure; `profileProblems` adds what needs more than one field (names, addresses, cycles). */
export const ProfileShape = z.strictObject({
  name,
  description: z.string().optional(),
  image: z.discriminatedUnion('source', [LabImageSource, NixImageSource]),
  readiness: Readiness.default({ kind: 'ssh-units' }),
  network: z.strictObject({ prefixLength: z.number().int().min(8).max(30).default(24) }).default({ prefixLength: 24 }),
  defaults: z
    .strictObject({
      memoryMiB: z.number().int().min(128).max(65536).default(768),
      vcpus: z.number().int().min(1).max(64).default(1),
    })
    .default({ memoryMiB: 768, vcpus: 1 }),
  /** Units every node must have active (beyond the services placed on it). */
  baseUnits: z.array(unitName).default([]),
  nodes: z.array(NodeSpec).min(1),
  services: z.record(name, ServiceContract).default({}),
});

export const Profile = ProfileShape.superRefine((p, ctx) => {
  for (const i of profileProblems(p)) ctx.addIssue({ code: 'custom', ...i });
});
export type Profile = z.infer<typeof Profile>;

export interface ProfileIssue {
  path: (string | number)[];
  message: string;
}

const ipNumber = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/**
 * Checks across fields, written against raw input so they also run when the structure has
 * errors elsewhere: every problem of a profile is reported at once, each with its path.
 */
export function profileProblems(raw: unknown): ProfileIssue[] {
  const issues: ProfileIssue[] = [];
  if (!isRecord(raw) || !Array.isArray(raw.nodes)) return issues;
  const nodes = raw.nodes.map((n) => (isRecord(n) ? n : {}));
  const names = new Map<string, number>();
  const ips = new Map<string, number>();
  const prefix = isRecord(raw.network) && typeof raw.network.prefixLength === 'number' ? raw.network.prefixLength : 24;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const firstIp = nodes.map((n) => n.ip).find((ip): ip is string => typeof ip === 'string' && IPV4.test(ip));
  nodes.forEach((n, i) => {
    if (typeof n.name === 'string') {
      if (names.has(n.name))
        issues.push({ path: ['nodes', i, 'name'], message: `duplicate node name "${n.name}" (also nodes[${names.get(n.name)}])` });
      names.set(n.name, i);
    }
    if (typeof n.ip === 'string' && IPV4.test(n.ip)) {
      if (ips.has(n.ip)) issues.push({ path: ['nodes', i, 'ip'], message: `duplicate ip ${n.ip} (also nodes[${ips.get(n.ip)}])` });
      ips.set(n.ip, i);
      const host = ipNumber(n.ip) & ~mask;
      if (firstIp && (ipNumber(n.ip) & mask) >>> 0 !== (ipNumber(firstIp) & mask) >>> 0)
        issues.push({ path: ['nodes', i, 'ip'], message: `${n.ip} is outside the cluster subnet of ${firstIp}/${prefix}` });
      else if (host === 0 || host === ~mask >>> 0)
        issues.push({ path: ['nodes', i, 'ip'], message: `${n.ip} is the subnet's network or broadcast address` });
    }
    const fwd = new Map<string, number>();
    (Array.isArray(n.forwards) ? n.forwards : []).forEach((f, j) => {
      const fname = isRecord(f) && typeof f.name === 'string' ? f.name : null;
      if (!fname) return;
      if (fname === 'ssh') issues.push({ path: ['nodes', i, 'forwards', j, 'name'], message: '"ssh" is the harness\'s own forward' });
      if (fwd.has(fname))
        issues.push({
          path: ['nodes', i, 'forwards', j, 'name'],
          message: `duplicate forward "${fname}" (also forwards[${fwd.get(fname)}])`,
        });
      fwd.set(fname, j);
    });
  });
  nodes.forEach((n, i) => {
    strings(n.dependsOn).forEach((d, j) => {
      if (!names.has(d)) issues.push({ path: ['nodes', i, 'dependsOn', j], message: `unknown node "${d}"` });
      if (d === n.name) issues.push({ path: ['nodes', i, 'dependsOn', j], message: 'a node cannot depend on itself' });
    });
  });
  const cycle = dependencyCycle(
    nodes.map((n) => ({ name: String(n.name), dependsOn: strings(n.dependsOn).filter((d) => d !== n.name && names.has(d)) })),
  );
  if (cycle) issues.push({ path: ['nodes', names.get(cycle[0]!) ?? 0, 'dependsOn'], message: `dependency cycle: ${cycle.join(' -> ')}` });
  const roles = new Set(nodes.flatMap((n) => strings(n.roles)));
  for (const [svc, c] of Object.entries(isRecord(raw.services) ? raw.services : {}))
    strings(isRecord(c) ? c.roles : []).forEach((r, j) => {
      if (r !== '*' && !roles.has(r))
        issues.push({ path: ['services', svc, 'roles', j], message: `no node has role "${r}" (roles: ${[...roles].join(', ')})` });
    });
  return issues;
}

/** A cycle in the dependsOn graph (as node names, first repeated at the end), or null. */
export function dependencyCycle(nodes: { name: string; dependsOn: string[] }[]): string[] | null {
  const deps = new Map(nodes.map((n) => [n.name, n.dependsOn]));
  const state = new Map<string, 'open' | 'done'>();
  const walk = (n: string, trail: string[]): string[] | null => {
    if (state.get(n) === 'done') return null;
    if (state.get(n) === 'open') return [...trail.slice(trail.indexOf(n)), n];
    state.set(n, 'open');
    for (const d of deps.get(n) ?? []) {
      const c = walk(d, [...trail, n]);
      if (c) return c;
    }
    state.set(n, 'done');
    return null;
  };
  for (const n of deps.keys()) {
    const c = walk(n, []);
    if (c) return c;
  }
  return null;
}

/** A service module's view of its params, handed to the loader by the layer that owns the modules. */
export type ServiceParamCheck = z.ZodType;

/** A loaded profile remembers where it came from so relative paths (recipe, flake) resolve. */
export interface LoadedProfile extends Profile {
  file: string;
  dir: string;
}

export function servicesOn(profile: Profile, node: NodeSpec): [string, ServiceContract][] {
  return Object.entries(profile.services).filter(([, c]) => c.roles.includes('*') || c.roles.some((r) => node.roles.includes(r)));
}

/** Units readiness waits for on a node: the base units plus every service placed on it, but deferred ones. */
export function expectedUnits(profile: Profile, node: NodeSpec): string[] {
  const placed = servicesOn(profile, node).filter(([, c]) => !c.deferred);
  return [...new Set([...profile.baseUnits, ...placed.map(([, c]) => c.unit)])];
}

export function nodeMemory(profile: Profile, node: NodeSpec): number {
  return node.memoryMiB ?? profile.defaults.memoryMiB;
}

export function nodeVcpus(profile: Profile, node: NodeSpec): number {
  return node.vcpus ?? profile.defaults.vcpus;
}

/** The console marker a node prints when ready (console-marker readiness), or null for SSH readiness. */
export function readinessMarker(profile: Profile, node: string): string | null {
  return profile.readiness.kind === 'console-marker' ? profile.readiness.marker.replaceAll('{node}', node) : null;
}
