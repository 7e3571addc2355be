// The dependency rule (docs/ARCHITECTURE.md "Layers"), checked by `npm run check`: dependencies point down.
// protocol and store import nothing of ours; each middle layer imports only the layers below it; only the
// composition root (src/main.ts, src/app.ts, src/cli.ts) imports everything. Test files are left out: a test may
// reach into any layer it exercises.
/** The foundation files: settings, the logger, the contracts, backoff, the owner's mount allowlist file, the price table. */
const foundation = 'src/(backoff|config|log|mount-allowlist-file|prices|settings|types)\\.ts';
const layers = [
  // [folder, the folders of ours it may import besides its own]
  ['src/protocol/', []],
  ['src/store/', []],
  [foundation, ['src/protocol/', 'src/store/']],
  ['src/sandbox/', ['src/protocol/', 'src/store/', foundation]],
  // Building the agent image and setting up the engine: not part of the boundary, but built on sandbox/runtimes.
  ['src/image/', ['src/protocol/', 'src/store/', foundation, 'src/sandbox/']],
  ['src/queue/', ['src/protocol/', 'src/store/', foundation]],
  ['src/tasks/', ['src/protocol/', 'src/store/', foundation, 'src/queue/']],
  ['src/intake/', ['src/protocol/', 'src/store/', foundation, 'src/sandbox/', 'src/tasks/']],
  ['src/channels/', ['src/protocol/', 'src/store/', foundation, 'src/sandbox/', 'src/intake/']],
  [
    'src/cli/',
    [
      'src/protocol/',
      'src/store/',
      foundation,
      'src/sandbox/',
      'src/image/',
      'src/queue/',
      'src/tasks/',
      'src/intake/',
    ],
  ],
];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'An import cycle hides which module owns what.',
      severity: 'error',
      from: { pathNot: '\\.test\\.ts$' },
      to: { circular: true },
    },
    ...layers.map(([folder, allowed]) => ({
      name: `layer:${folder}`,
      comment: `${folder} may import only ${allowed.length ? allowed.join(', ') : 'itself'} (and packages).`,
      severity: 'error',
      from: { path: `^${folder}`, pathNot: '\\.test\\.ts$' },
      to: {
        path: '^(src|agent)/',
        pathNot: [`^${folder}`, ...allowed.map((path) => `^${path}`)],
      },
    })),
    {
      name: 'agent-imports-only-protocol',
      comment: 'The agent runner runs in another place: of the host it may import only the shared protocol.',
      severity: 'error',
      from: { path: '^agent/src', pathNot: '\\.test\\.ts$' },
      to: { path: '^src/', pathNot: '^src/protocol/' },
    },
    {
      name: 'protocol-imports-only-zod',
      comment: 'The protocol is compiled into the agent image too: it may import only node: modules and zod.',
      severity: 'error',
      from: { path: '^src/protocol/', pathNot: '\\.test\\.ts$' },
      to: {
        dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg'],
        pathNot: 'node_modules/zod/',
      },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^dist|/dist/|^agent/node_modules)' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
  },
};
