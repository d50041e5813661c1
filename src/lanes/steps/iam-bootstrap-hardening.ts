import type { Node } from '../../cluster/node.js';
import { CheckFailed } from '../../core/errors.js';
import type { IamClient } from '../../services/iam.js';
import type { ClusterEnv, Step } from '../lane.js';

/** Bodies POST /v1/credentials must refuse with a 400 naming the field. */
const BAD_CREDENTIALS: { body: Record<string, unknown>; names: RegExp }[] = [
  { body: { id: 'Not An Id', subject: 's' }, names: /\bid\b/ },
  { body: { id: 'bad-subject', subject: '' }, names: /subject/ },
  { body: { id: 'bad-scopes', subject: 's', scopes: 'iam:admin' }, names: /scopes/ },
  { body: { id: 'bad-field', subject: 's', owner: 'x' }, names: /owner/ },
];

/** The refusals an iam without admin credentials must answer, each with its status and the words it must contain. */
async function refusals(iam: IamClient, node: Node) {
  const issue = iam.paths().issue;
  const plain = await iam.issue(node, { subject: 'not-an-admin', ttlSeconds: 300 });
  const cases = [
    {
      what: 'a key rotation without a token',
      status: 401,
      words: /admin bearer token/,
      ask: () => iam.call(node, 'POST', '/v1/keys/rotate', { body: {} }),
    },
    {
      what: 'a key rotation with a non-admin token',
      status: 403,
      words: /iam:admin/,
      ask: () => iam.call(node, 'POST', '/v1/keys/rotate', { body: {}, token: plain.token }),
    },
    {
      what: 'an open token request for the admin scope',
      status: 403,
      words: /iam:admin/,
      ask: () => iam.call(node, 'POST', issue, { body: { subject: 'x', scopes: ['iam:admin'] } }),
    },
    {
      what: 'the admin credential with a guessed secret',
      status: 401,
      words: /credential admin/,
      ask: () => iam.call(node, 'POST', issue, { body: { credential: { id: 'admin', secret: 'guess' } } }),
    },
  ];
  const out = [];
  for (const c of cases) {
    const r = await c.ask();
    out.push({ what: c.what, status: r.status, error: r.body.error });
    if (r.status !== c.status || !c.words.test(String(r.body.error ?? '')))
      throw new CheckFailed(
        `iam on ${node} answered ${r.status} ${JSON.stringify(r.body)} to ${c.what}: ${c.status} naming ${c.words.source} was due`,
      );
  }
  return out;
}

/**
 * iam's bootstrap hardening: the admin secret exists only on the bootstrap node, root-only; iam
 * registered it once (a second bootstrap with another secret, on another node, replaces
 * nothing); without it, admin calls and privileged scopes are refused; bad credential bodies are
 * a 400 naming the field and change nothing.
 */
export const iamBootstrapHardening: Step<ClusterEnv<'iam'>> = {
  name: 'iam-bootstrap-hardening',
  proves:
    "iam's admin secret is root-only on the bootstrap node alone; admin calls and privileged scopes are refused without it; a second bootstrap with another secret replaces nothing; bad credential bodies are 400s naming the field",
  needs: ['readiness'],
  run: async ({ services: { iam } }, step) => {
    const adminNode = iam.adminNode();
    const other = iam.nodes().find((n) => n !== adminNode)!;
    const file = `${iam.credentialsDir()}/admin.secret`;
    const files = await Promise.all(
      iam.nodes().map(async (n) => ({ node: n.name, stat: (await n.succeed(['stat', '-c', '%a %U %s', file])).trim() })),
    );
    const [mode, owner, size] = files.find((f) => f.node === adminNode.name)!.stat.split(' ');
    if (mode !== '600' || owner !== 'root' || size === '0')
      throw new CheckFailed(
        `${adminNode}: ${file} is mode ${mode}, owner ${owner}, ${size} bytes: a non-empty root-only (600) secret was due`,
      );
    const leaked = files.filter((f) => f.node !== adminNode.name && !f.stat.endsWith(' 0'));
    if (leaked.length) throw new CheckFailed(`the admin secret is on ${leaked.map((f) => f.node).join(', ')} too (${file} not empty)`);

    step.phase('refusals');
    const refused = await refusals(iam, other);

    step.phase('bad credential bodies');
    const admin = await iam.adminToken();
    const list = async () => (await iam.call(other, 'GET', '/v1/credentials', { token: admin })).body.credentials;
    const before = await list();
    const bad = [];
    for (const { body, names } of BAD_CREDENTIALS) {
      const r = await iam.call(other, 'POST', '/v1/credentials', { body, token: admin });
      bad.push({ body, status: r.status, error: r.body.error });
      if (r.status !== 400 || !names.test(String(r.body.error ?? '')))
        throw new CheckFailed(
          `iam on ${other} answered ${r.status} ${JSON.stringify(r.body)} to ${JSON.stringify(body)}: a 400 naming ${names.source} was due`,
        );
    }
    if (JSON.stringify(await list()) !== JSON.stringify(before))
      throw new CheckFailed(`iam on ${other}: refused credential bodies changed its credentials`);

    step.phase('second bootstrap');
    const second = await secondBootstrap(iam, other, file);
    await step.json('iam-bootstrap.json', { files, refused, badBodies: bad, secondBootstrap: second });
    return `admin secret root-only on ${adminNode} alone; ${refused.length} refusals; ${bad.length} bad bodies refused; a second bootstrap on ${other} replaced nothing`;
  },
};

/** `node`'s iam restarted with another admin secret in its bootstrap file: the registered admin must be unchanged. */
async function secondBootstrap(iam: IamClient, node: Node, file: string) {
  const intruder = `second-bootstrap-${Date.now()}`;
  const since = Math.floor(Date.now() / 1000);
  const restart = async (secret: string) => {
    await node.succeed(['sh', '-c', 'umask 077 && cat > "$1"', 'sh', file], { stdin: secret, via: 'session' });
    await node.succeed(['systemctl', 'restart', iam.unit], { timeoutMs: 200_000 });
    await iam.waitHealthy(node);
  };
  try {
    await restart(intruder);
    const r = await iam.call(node, 'POST', iam.paths().issue, { body: { credential: { id: 'admin', secret: intruder } } });
    const log = (await node.exec(['journalctl', '-u', iam.unit, '-o', 'cat', '--since', `@${since}`])).stdout;
    const said = log.split('\n').find((l) => l.includes('admin credential')) ?? '';
    if (r.status !== 401)
      throw new CheckFailed(
        `iam on ${node} took a second bootstrap: the admin credential now answers to the secret planted in ${file} (${r.status})`,
      );
    await iam.adminToken(); // the first bootstrap's secret still holds
    return { node: node.name, status: r.status, log: said };
  } finally {
    await restart('');
  }
}
