import { z } from 'zod';
import type { Node } from '../cluster/node.js';
import { http } from '../probes/http.js';
import { defineService, ServiceClient } from './service.js';

const Params = z.strictObject({});

/**
 * An agent on each worker (plasmavmc-agent, prismnet-agent, coronafs-agent on workers and controllers): it registers itself in chainfire
 * under a lease; the harness sees it through the control API and names a missing one's cause
 * from its unit and process.
 */
export class WorkerAgentClient extends ServiceClient<z.output<typeof Params>> {
  /** The agent's own /health on its declared `agent` port within `timeoutMs`; null when it declares none. */
  async health(node: Node, timeoutMs = 5000): Promise<{ ok: boolean; detail: string } | null> {
    const port = this.svc.contract.ports.find((p) => p.name === 'agent');
    if (!port) return null;
    try {
      const r = await http('GET', `${await node.url(port.port)}/health`, { timeoutMs });
      return { ok: r.status === 200, detail: `HTTP ${r.status}` };
    } catch (e) {
      return { ok: false, detail: (e as Error).message };
    }
  }
}

const agent = (name: string, description: string) =>
  defineService({ name, description, params: Params, client: (svc) => new WorkerAgentClient(svc) });

export const plasmavmcAgent = agent('plasmavmc-agent', 'runs the VMs placed on its worker as QEMU under systemd');
export const prismnetAgent = agent('prismnet-agent', 'applies tenant networks on its worker (bridge, VXLAN, taps, DHCP)');
export const coronafsAgent = agent('coronafs-agent', 'exports the volumes placed on its node over NBD');
