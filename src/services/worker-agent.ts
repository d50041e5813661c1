import { z } from 'zod';
import type { Node } from '../cluster/node.js';
import { http } from '../probes/http.js';
import { defineService, ServiceClient } from './service.js';

const Params = z.strictObject({});

/** What a worker agent's process is doing, for naming why it is not registered. */
export interface AgentProcess {
  unit: string;
  active: string;
  pid: number;
  /** /proc/<pid>/stat state: R running, S sleeping, T stopped (SIGSTOP), Z zombie, ... */
  state: string | null;
}

/**
 * An agent on each worker (plasmavmc-agent, prismnet-agent, coronafs-agent on workers and controllers): it registers itself in chainfire
 * under a lease; the harness sees it through the control API and names a missing one's cause
 * from its unit and process.
 */
export class WorkerAgentClient extends ServiceClient<z.output<typeof Params>> {
  async process(node: Node): Promise<AgentProcess> {
    const r = await node.exec(['systemctl', 'show', '-p', 'ActiveState', '-p', 'MainPID', this.unit]);
    const props = Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split('=', 2) as [string, string]),
    );
    const [active, pid] = [props.ActiveState ?? 'unknown', props.MainPID ?? '0'];
    const stat = Number(pid) > 0 ? await node.exec(['cat', `/proc/${pid}/stat`]) : null;
    const state = stat?.code === 0 ? (/\) (\S)/.exec(stat.stdout)?.[1] ?? null) : null;
    return { unit: this.unit, active, pid: Number(pid), state };
  }

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

  /** Why the agent on a node is not doing its job, as far as its unit and process tell. */
  async describe(node: Node): Promise<string> {
    const p = await this.process(node);
    const frozen = p.state === 'T' ? ' (stopped by a signal: the process is frozen)' : '';
    return `${p.unit} is ${p.active}, main pid ${p.pid || 'none'}${p.state ? ` in state ${p.state}${frozen}` : ''}`;
  }
}

const agent = (name: string, description: string) =>
  defineService({ name, description, params: Params, client: (svc) => new WorkerAgentClient(svc) });

export const plasmavmcAgent = agent('plasmavmc-agent', 'runs the VMs placed on its worker as QEMU under systemd');
export const prismnetAgent = agent('prismnet-agent', 'applies tenant networks on its worker (bridge, VXLAN, taps, DHCP)');
export const coronafsAgent = agent('coronafs-agent', 'exports the volumes placed on its node over NBD');
