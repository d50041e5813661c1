import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { NodeRegistration } from '../config/install-contract.js';
import { writeFileAtomic } from '../core/atomic.js';

/** Progress reports kept per node: the newest win, so a chatty or hostile node cannot grow the store without bound. */
export const MAX_PROGRESS = 100;

const Progress = z.object({ at: z.string(), stage: z.string(), detail: z.string().optional() });

const NodeState = z.object({
  registration: NodeRegistration,
  registeredAt: z.string(),
  phoneHomes: z.array(z.object({ at: z.string(), machine_id: z.string(), mac: z.string().optional(), remote: z.string().optional() })),
  progress: z.array(Progress),
  /** Reports dropped to keep `progress` at MAX_PROGRESS. */
  progressDropped: z.number().int().default(0),
  desiredSystem: z.object({
    state: z.enum(['pending', 'active', 'rolled-back']),
    system: z.string().optional(),
    at: z.string().optional(),
    detail: z.record(z.string(), z.unknown()).optional(),
  }),
});
export type NodeState = z.infer<typeof NodeState>;

/** A host-native service the cluster runs: fleet-scheduler places its replicas on workers. */
export const FleetServiceSpec = z.strictObject({
  replicas: z.number().int().min(1).max(8),
  port: z.number().int().min(20000).max(29999),
});
export type FleetServiceSpec = z.infer<typeof FleetServiceSpec>;
export const SERVICE_NAME = /^[a-z][a-z0-9-]{0,30}$/;
export interface FleetService extends FleetServiceSpec {
  name: string;
  declaredAt: string;
}
const StoredService = z.object({ name: z.string().regex(SERVICE_NAME), ...FleetServiceSpec.shape, declaredAt: z.string() });

// `services` came after the first stores were written: one without it has none.
const StoreFile = z.object({
  schemaVersion: z.literal(1),
  nodes: z.record(z.string(), NodeState),
  services: z.record(z.string(), StoredService).default({}),
});

export class DuplicateMachine extends Error {
  override name = 'DuplicateMachine';
}

export class PortTaken extends Error {
  override name = 'PortTaken';
}

/**
 * The deployer's durable state: one JSON file rewritten atomically after every change, read
 * back on start, so a deployer restart keeps pre-registered nodes and their progress. Nodes live
 * in a Map: an id from a URL (`__proto__`, `constructor`) is only ever a key.
 */
export class DeployerStore {
  private readonly byId = new Map<string, NodeState>();
  private readonly servicesByName = new Map<string, FleetService>();

  constructor(readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    let raw: string | null = null;
    try {
      raw = readFileSync(file, 'utf8');
    } catch {
      /* first start */
    }
    if (!raw) return;
    const stored = StoreFile.parse(JSON.parse(raw));
    for (const [id, n] of Object.entries(stored.nodes)) this.byId.set(id, n);
    for (const [name, svc] of Object.entries(stored.services)) this.servicesByName.set(name, svc);
  }

  /** The declared services, by name. */
  services(): Record<string, FleetService> {
    return Object.fromEntries(this.servicesByName);
  }

  /** Declare (or change) a service; the same spec again changes nothing. A port another service has is refused. */
  async declareService(name: string, spec: FleetServiceSpec): Promise<'created' | 'unchanged' | 'replaced'> {
    const clash = [...this.servicesByName.values()].find((s) => s.port === spec.port && s.name !== name);
    if (clash) throw new PortTaken(`port ${spec.port} is service ${clash.name}'s`);
    const prior = this.servicesByName.get(name);
    if (prior && prior.replicas === spec.replicas && prior.port === spec.port) return 'unchanged';
    this.servicesByName.set(name, { name, ...spec, declaredAt: new Date().toISOString() });
    await this.save();
    return prior ? 'replaced' : 'created';
  }

  /** Remove a declared service; false when there was none. */
  async removeService(name: string): Promise<boolean> {
    if (!this.servicesByName.delete(name)) return false;
    await this.save();
    return true;
  }

  /** Every node, as a plain object for JSON answers and evidence. */
  nodes(): Record<string, NodeState> {
    return Object.fromEntries(this.byId);
  }

  node(id: string): NodeState | undefined {
    return this.byId.get(id);
  }

  byMachine(machineId: string): NodeState | undefined {
    return [...this.byId.values()].find((n) => n.registration.machine_id === machineId);
  }

  /**
   * Idempotent: the same registration again changes nothing; a different one replaces it and
   * resets progress. A machine id already registered under another node id is refused.
   */
  async register(reg: NodeRegistration): Promise<'created' | 'unchanged' | 'replaced'> {
    const owner = this.byMachine(reg.machine_id);
    if (owner && owner.registration.id !== reg.id)
      throw new DuplicateMachine(`machine "${reg.machine_id}" is already registered as node "${owner.registration.id}"`);
    const prior = this.byId.get(reg.id);
    if (prior && JSON.stringify(prior.registration) === JSON.stringify(reg)) return 'unchanged';
    this.byId.set(reg.id, {
      registration: reg,
      registeredAt: new Date().toISOString(),
      phoneHomes: [],
      progress: [],
      progressDropped: 0,
      desiredSystem: { state: 'pending' },
    });
    await this.save();
    return prior ? 'replaced' : 'created';
  }

  async update(id: string, fn: (n: NodeState) => void): Promise<void> {
    const n = this.byId.get(id);
    if (!n) throw new Error(`no node "${id}"`);
    fn(n);
    if (n.progress.length > MAX_PROGRESS) n.progressDropped += n.progress.splice(0, n.progress.length - MAX_PROGRESS).length;
    if (n.phoneHomes.length > MAX_PROGRESS) n.phoneHomes.splice(0, n.phoneHomes.length - MAX_PROGRESS);
    await this.save();
  }

  private saving: Promise<void> = Promise.resolve();

  /** Writes are chained and each serializes the state as of its turn, so concurrent requests never let an older snapshot land last. */
  private save(): Promise<void> {
    this.saving = this.saving.then(() =>
      writeFileAtomic(this.file, `${JSON.stringify({ schemaVersion: 1, nodes: this.nodes(), services: this.services() }, null, 2)}\n`),
    );
    return this.saving;
  }
}
