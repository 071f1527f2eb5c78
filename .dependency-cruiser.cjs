// The architecture of src/, checked by `npm run lint`: stages in folders, each importing only the stages below it,
// another stage only through its index.ts, and no import cycle. The README's "How it works" draws the same map.
const STAGES = ['base', 'inputs', 'nix', 'diagnosis', 'agent', 'runner', 'builders', 'report', 'canary']

const upward = STAGES.slice(0, -1).map((stage, index) => ({
  name: `${stage}-imports-no-stage-above`,
  comment: `${stage}/ may import only ${STAGES.slice(0, index).join(', ') || 'nothing of src/'} (and itself).`,
  severity: 'error',
  from: { path: `^src/${stage}/` },
  to: { path: `^src/(?:${STAGES.slice(index + 1).join('|')})/` }
}))

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import cycle ties two modules into one: move the shared vocabulary into the lower one.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true }
    },
    ...upward,
    {
      name: 'stages-import-no-entry-point',
      comment: 'The entry points and orchestrators in src/*.ts are the top: no stage imports them.',
      severity: 'error',
      from: { path: '^src/[^/]+/' },
      to: { path: '^src/[^/]+\\.ts$' }
    },
    {
      name: 'other-stages-through-their-index',
      comment: 'Another stage is used through its index.ts, which re-exports only what other stages may use.',
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { path: '^src/[^/]+/', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$'] }
    },
    {
      name: 'entry-points-through-indexes',
      comment:
        'The entry points use each stage through its index.ts too; only post.ts reads the state keys from ' +
        'inputs/constants.ts, to start without the rest of inputs/ (ssh2 among it) when there is nothing to undo.',
      severity: 'error',
      from: { path: '^src/[^/]+\\.ts$' },
      to: { path: '^src/[^/]+/', pathNot: ['^src/[^/]+/index\\.ts$', '^src/inputs/constants\\.ts$'] }
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports tie modules together as much as any other.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' }
  }
}
