import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DeployerContract } from '../config/install-contract.js';
import { chainfirePublisher } from './publish-chainfire.js';
import { Deployer } from './server.js';
import { DeployerStore } from './store.js';

/**
 * The deployer as the cluster runs it (deployer.service on the bootstrap node): the same server
 * and store the bare-metal lane runs on the host, bundled into the image as one file. Its state
 * is one JSON file in its state dir, so a restart keeps every pre-registered node; the admin
 * token is a systemd credential made once per cluster on that node.
 */
const env = process.env;
const need = (name: string): string => {
  const v = env[name];
  if (!v) throw new Error(`deployer: ${name} is not set`);
  return v;
};

const stateDir = need('STATE_DIRECTORY');
const contractFile = need('DEPLOYER_CONTRACT');
const contract = DeployerContract.parse(JSON.parse(readFileSync(contractFile, 'utf8')));
const adminToken = readFileSync(path.join(need('CREDENTIALS_DIRECTORY'), 'admin.token'), 'utf8').trim();
const ip = need('CLUSTER_IP');
const say = (level: string) => (msg: string) => console.error(`${level} ${msg}`);

const deployer = new Deployer({
  contract,
  adminToken,
  store: new DeployerStore(path.join(stateDir, 'state.json')),
  artifacts: path.join(stateDir, 'artifacts'),
  publicUrl: (port) => `http://${ip}:${port}`,
  log: { info: say('info'), warn: say('warn'), error: say('error') },
  // Declared services go to fleet-scheduler through chainfire; the resync catches up after chainfire was away.
  publish: env.CHAINFIRE_ENDPOINTS ? chainfirePublisher(env.CHAINFIRE_ENDPOINTS.split(' ').filter(Boolean)) : undefined,
});
const RESYNC_MS = 30_000;
const port = await deployer.listen(Number(env.DEPLOYER_PORT ?? 8088), '0.0.0.0');
console.error(
  `deployer: listening on ${ip}:${port}, ${Object.keys(deployer.store.nodes()).length} node(s) registered, ${Object.keys(deployer.store.services()).length} service(s) declared`,
);
if (env.CHAINFIRE_ENDPOINTS) {
  void deployer.publish();
  setInterval(() => void deployer.publish(), RESYNC_MS);
}
