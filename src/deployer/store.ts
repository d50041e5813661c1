import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { NodeRegistration } from '../config/install-contract.js';
import { writeFileAtomic } from '../core/atomic.js';

const Progress = z.object({ at: z.string(), stage: z.string(), detail: z.string().optional() });

const NodeState = z.object({
  registration: NodeRegistration,
  registeredAt: z.string(),
  phoneHomes: z.array(z.object({ at: z.string(), machine_id: z.string(), mac: z.string().optional(), remote: z.string().optional() })),
  progress: z.array(Progress),
  desiredSystem: z.object({
    state: z.enum(['pending', 'active', 'rolled-back']),
    system: z.string().optional(),
    at: z.string().optional(),
    detail: z.record(z.string(), z.unknown()).optional(),
  }),
});
export type NodeState = z.infer<typeof NodeState>;

const StoreFile = z.object({ schemaVersion: z.literal(1), nodes: z.record(z.string(), NodeState) });

/**
 * The deployer's durable state: one JSON file rewritten atomically after every change, read
 * back on start, so a deployer restart keeps pre-registered nodes and their progress.
 */
export class DeployerStore {
  private data: z.infer<typeof StoreFile>;

  constructor(readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    let raw: string | null = null;
    try {
      raw = readFileSync(file, 'utf8');
    } catch {
      /* first start */
    }
    this.data = raw ? StoreFile.parse(JSON.parse(raw)) : { schemaVersion: 1, nodes: {} };
  }

  nodes(): Record<string, NodeState> {
    return this.data.nodes;
  }

  node(id: string): NodeState | undefined {
    return this.data.nodes[id];
  }

  byMachine(machineId: string): NodeState | undefined {
    return Object.values(this.data.nodes).find((n) => n.registration.machine_id === machineId);
  }

  /** Idempotent: the same registration again changes nothing; a different one replaces it and resets progress. */
  async register(reg: NodeRegistration): Promise<'created' | 'unchanged' | 'replaced'> {
    const prior = this.data.nodes[reg.id];
    if (prior && JSON.stringify(prior.registration) === JSON.stringify(reg)) return 'unchanged';
    this.data.nodes[reg.id] = {
      registration: reg,
      registeredAt: new Date().toISOString(),
      phoneHomes: [],
      progress: [],
      desiredSystem: { state: 'pending' },
    };
    await this.save();
    return prior ? 'replaced' : 'created';
  }

  async update(id: string, fn: (n: NodeState) => void): Promise<void> {
    fn(this.data.nodes[id]!);
    await this.save();
  }

  private saving: Promise<void> = Promise.resolve();

  /** Writes are chained and each serializes the state as of its turn, so concurrent requests never let an older snapshot land last. */
  private save(): Promise<void> {
    this.saving = this.saving.then(() => writeFileAtomic(this.file, `${JSON.stringify(this.data, null, 2)}\n`));
    return this.saving;
  }
}
