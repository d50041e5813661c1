import { z } from 'zod';
import type { Node } from '../cluster/node.js';
import { defineService } from './service.js';
import { ControlApiClient, type TenantToken } from './tenant-api.js';

const Params = z.strictObject({});

export interface Volume {
  id: string;
  name: string;
  sizeMiB: number;
  kind: 'controller' | 'local';
  node: string;
  host: string;
  port: number;
  attachedTo: string | null;
  status: { state: string };
}

/** coronafs's control API: volumes exported over NBD by a controller node or a worker, attached to VMs. */
export class CoronafsClient extends ControlApiClient<z.output<typeof Params>> {
  /** One API node's /health: which export agents it sees registered (and their role). */
  async health(node: Node): Promise<{ agents: { node: string; role: string }[] }> {
    return this.healthOf(node);
  }

  /** `seed`: base64 of up to 4 KiB the new volume starts with (a guest's config). */
  createVolume(
    who: TenantToken,
    spec: { name: string; sizeMiB: number; kind: 'controller' | 'local'; node?: string; seed?: string },
  ): Promise<Volume> {
    return this.api.ok(who, 'POST', '/v1/volumes', spec);
  }

  volume(who: TenantToken, id: string): Promise<Volume> {
    return this.api.ok(who, 'GET', `/v1/volumes/${id}`);
  }

  async volumes(who: TenantToken): Promise<Volume[]> {
    return (await this.api.ok<{ volumes: Volume[] }>(who, 'GET', '/v1/volumes')).volumes;
  }

  detach(who: TenantToken, id: string, vm: string): Promise<Volume> {
    return this.api.ok(who, 'POST', `/v1/volumes/${id}/detach`, { vm });
  }

  deleteVolume(who: TenantToken, id: string): Promise<unknown> {
    return this.api.ok(who, 'DELETE', `/v1/volumes/${id}`);
  }
}

export const coronafs = defineService({
  name: 'coronafs',
  description: 'shared volumes over NBD (lab: small control API, state in chainfire; qemu-nbd exports by coronafs-agent)',
  params: Params,
  client: (svc) => new CoronafsClient(svc),
});
