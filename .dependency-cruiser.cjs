/**
 * The layering rule, checked on the compiled tree (dist/) by `make test` (and test/unit/layers.test.ts):
 * data flows one way, and no module imports from a layer above its own. Layers, lowest first;
 * directories on one line are peers and may not import each other either.
 */
const LAYERS = [
  ['core'],
  ['host'],
  ['config'],
  ['images', 'budget', 'deployer'],
  ['vm'],
  ['cluster', 'baremetal', 'doctor'],
  ['probes'],
  ['services'],
  ['faults'],
  ['lanes'],
  ['commands'],
  ['cli\\.js'],
];

const dir = (names) => `^dist/(${names.join('|')})(/|$)`;

const forbidden = LAYERS.flatMap((layer, i) =>
  layer.map((name) => {
    const others = LAYERS.slice(i).flat().filter((n) => n !== name);
    return {
      name: `no-upward-import-from-${name.replace('\\.js', '')}`,
      comment: `${name} may import only from the layers below it (${LAYERS.slice(0, i).flat().join(', ') || 'none'})`,
      severity: 'error',
      from: { path: dir([name]) },
      to: { path: dir(others) },
    };
  }),
);

module.exports = {
  forbidden: [
    ...forbidden,
    { name: 'no-circular', severity: 'error', comment: 'modules must not import each other in a circle', from: {}, to: { circular: true, viaOnly: { pathNot: '\\.d\\.ts$' } } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.map$' },
    moduleSystems: ['es6'],
  },
};
