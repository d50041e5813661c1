import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { requireTools } from '../host/tools.js';

/** A certificate the cluster CA signed, and its key (PEM). */
export interface Leaf {
  name: string;
  cert: string;
  key: string;
  /** Upper-case hex, as Node's X509Certificate and TLS peer certificates show it. */
  serial: string;
  certFile: string;
}

const NAME = /^[a-z0-9][a-z0-9.-]{0,62}$/;

/**
 * The per-cluster certificate authority the harness keeps in the cluster's state dir (so `clean`
 * and every fresh lane start over): EC P-256 leaves for servers and clients, revocation through
 * the CA's own index and CRL. openssl does the cryptography; this only keeps the files.
 */
export class ClusterCa {
  private constructor(readonly dir: string) {}

  /** The CA in `dir`, made there on first use. */
  static async open(dir: string): Promise<ClusterCa> {
    await requireTools('openssl');
    const ca = new ClusterCa(dir);
    if (!existsSync(ca.file('ca.pem'))) await ca.create();
    return ca;
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  private openssl(args: string[]): Promise<unknown> {
    return execa('openssl', args, { cwd: this.dir, timeout: 30_000 });
  }

  private async create(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await fs.writeFile(this.file('index.txt'), '');
    await fs.writeFile(this.file('crlnumber'), '01\n');
    // `openssl ca` keeps revocations in index.txt and signs CRLs from it; nothing else uses this config.
    await fs.writeFile(
      this.file('ca.cnf'),
      `[ca]\ndefault_ca = cluster_ca\n[cluster_ca]\ndatabase = ${this.file('index.txt')}\ncrlnumber = ${this.file('crlnumber')}\ndefault_md = sha256\ndefault_crl_days = 30\n`,
    );
    const id = randomBytes(4).toString('hex');
    await this.openssl([
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '365'],
      ...['-keyout', 'ca.key', '-out', 'ca.pem', '-subj', `/CN=ultracloud cluster CA ${id}`],
      ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    ]);
  }

  get cert(): Promise<string> {
    return fs.readFile(this.file('ca.pem'), 'utf8');
  }

  /** A new leaf `name` (a server's with its addresses, or a client's), replacing any earlier one of that name. */
  async issue(name: string, o: { server?: { ips: string[]; dns: string[] } } = {}): Promise<Leaf> {
    if (!NAME.test(name)) throw new Error(`certificate name "${name}" must match ${NAME.source}`);
    const san = o.server ? [...o.server.ips.map((ip) => `IP:${ip}`), ...o.server.dns.map((d) => `DNS:${d}`)].join(',') : '';
    await fs.writeFile(
      this.file(`${name}.ext`),
      `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=${o.server ? 'serverAuth' : 'clientAuth'}\n${san ? `subjectAltName=${san}\n` : ''}`,
    );
    const serial = randomBytes(8).toString('hex').replace(/^./, '1').toUpperCase(); // 16 digits, never a leading zero
    await this.openssl([
      ...['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`],
    ]);
    await this.openssl([
      ...['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', `0x${serial}`],
      ...['-days', '30', '-extfile', `${name}.ext`, '-out', `${name}.pem`],
    ]);
    const [cert, key] = await Promise.all([fs.readFile(this.file(`${name}.pem`), 'utf8'), fs.readFile(this.file(`${name}.key`), 'utf8')]);
    return { name, cert, key, serial, certFile: this.file(`${name}.pem`) };
  }

  /** Record `leaf` as revoked; the next `crl()` lists it. */
  async revoke(leaf: Leaf): Promise<void> {
    await this.openssl(['ca', '-config', 'ca.cnf', '-keyfile', 'ca.key', '-cert', 'ca.pem', '-revoke', leaf.certFile]);
  }

  /** A CRL, signed now, of every leaf revoked so far (PEM). */
  async crl(): Promise<string> {
    await this.openssl(['ca', '-config', 'ca.cnf', '-keyfile', 'ca.key', '-cert', 'ca.pem', '-gencrl', '-out', 'crl.pem']);
    return fs.readFile(this.file('crl.pem'), 'utf8');
  }
}
