/**
 * Benchmark 4 of bench/README.md, "shaped like a nixpkgs override" (run as root; the lab is up):
 *
 *   npx tsx bench/nixpkgs-shaped.ts --runs 5
 *   LAB_RUNNER_NIX=2.34 LAB_BUILDER_NIX=2.34 npx tsx bench/nixpkgs-shaped.ts --runs 5
 *
 * A tree of 2,000 .nix files shaped like nixpkgs (bench/nixpkgs-tree.ts), whose apps a run overrides with a nonce,
 * so that only they need building; everything below them is in a signed binary cache on loopback
 * (bench/binary-cache.ts), which the runner (`--option substituters` in the build's args) and the builder (its
 * nix.conf, restored at the end) both substitute from, through one proxy (bench/throttle.ts): `direct`, or
 * `throttled` (per connection `--rate-mb` MB/s, each chunk `--delay-ms` late).
 *
 * Variants: the seed-style hook, the action with `auto`, and the action with `evaluate: builder` when the bundle's
 * action.yml has that input. Phases: for each link, `warm` (the builder holds the graph from an earlier run) then
 * `cold` (the graph deleted from the builder before each run). The runner is always a fresh CI runner: the graph is
 * deleted from its store before each run. Every step runs under /usr/bin/time, for its processes' CPU and peak
 * memory (the runner's daemon is not among them).
 */
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  builderCtl,
  chownTree,
  hostPath,
  loadLab,
  ROOT,
  runCommandAs,
  runOnHost
} from '../__tests__/lab/harness.js'
import { bundleId, runAction } from './action.js'
import { type CacheFiles, fillCache, startCacheServer } from './binary-cache.js'
import { type Phase, printPhase, type RunFigures, type Usage } from './nixpkgs-figures.js'
import { measureParts, type PartTimes, printParts } from './nixpkgs-parts.js'
import {
  appNames,
  DEFAULT_SHAPE,
  derivationCount,
  EMPTY_FLAKE_LOCK,
  outputBytes,
  overrideExpression,
  overrideFlake,
  packageName,
  type TreeShape,
  writeTree
} from './nixpkgs-tree.js'
import {
  benchBuilder,
  type Expression,
  NIX,
  nonce,
  option,
  printFailures,
  retried,
  seedBuild,
  seedConfig
} from './seed.js'
import {
  builderDatabase,
  deleteFromBuilder,
  deleteFromRunner,
  deletePathsFromBuilder,
  deletePathsFromRunner,
  pathsAmong,
  pathsWith,
  runnerDatabase
} from './store-paths.js'
import { type Link, startThrottleProxy } from './throttle.js'

const MAX_JOBS = 4
const lab = loadLab()
const bundle = bundleId(lab)
const runs = Number(option('--runs', '5'))
const links = option('--links', 'direct,throttled').split(',')
/** `--phases none` runs no variant, for `--parts` alone. */
const states = option('--phases', 'warm,cold')
  .split(',')
  .filter(state => state !== 'none')
/**
 * `--tuned` adds a variant: `auto` with the substitution settings a trusted builder user may raise for its session
 * (docs/nix.md): more HTTP connections and, from Nix 2.16, more parallel substitutions; before 2.16 a substitution
 * takes a build slot, so there it raises `max-jobs`.
 */
const tuned = process.argv.includes('--tuned')
/** `--parts` times the pieces of a cold run alone after the phases, on the direct link (bench/nixpkgs-parts.ts). */
const parts = process.argv.includes('--parts')
const throttled: Link = {
  bytesPerSecond: Number(option('--rate-mb', '50')) * 1e6,
  delayMs: Number(option('--delay-ms', '20'))
}
const shape: TreeShape = {
  ...DEFAULT_SHAPE,
  layers: Number(option('--layers', String(DEFAULT_SHAPE.layers))),
  width: Number(option('--width', String(DEFAULT_SHAPE.width))),
  work: Number(option('--work', String(DEFAULT_SHAPE.work)))
}
const b = benchBuilder(lab)
const apps = appNames(shape)
/** The same shape gives the same graph, so that its cache can be kept between invocations. */
const graphId = createHash('sha256')
  .update(JSON.stringify({ shape, system: lab.localSystem }))
  .digest('hex')
  .slice(0, 12)
const tree = `/tmp/nix-offload-bench-tree-${graphId}`
const cacheDir = option('--cache-dir', `/var/tmp/nix-offload-bench-cache-${graphId}-none`)
const evaluateKnown = /^ {2}evaluate:/m.test(readFileSync(join(ROOT, 'action.yml'), 'utf8'))

rmSync(hostPath(lab, tree), { recursive: true, force: true })
const files = writeTree(hostPath(lab, tree), graphId, shape)
chownTree(hostPath(lab, tree), lab.runnerUser)
const cache = await filledCache()
const server = await startCacheServer(cache)
const proxy = await startThrottleProxy('127.0.0.1', server.port)
const url = `http://127.0.0.1:${proxy.port}`
const originalConf = readFileSync(b.nixConf, 'utf8')

/** The whole graph below the apps, built once on the host and kept in `cacheDir`. */
async function filledCache(): Promise<CacheFiles> {
  const expression = join(tmpdir(), `nix-offload-bench-graph-${graphId}.nix`)
  const last = Array.from({ length: shape.width }, (_, i) => packageName(shape.layers, i + 1))
  writeFileSync(
    expression,
    `let pkgs = import ${hostPath(lab, tree)} { system = "${lab.localSystem}"; }; in { inherit (pkgs) ${last.join(' ')}; }\n`
  )
  if (!existsSync(join(cacheDir, 'filled')))
    process.stderr.write(`filling the binary cache ${cacheDir} (builds the whole graph once)…\n`)
  try {
    return await fillCache({ dir: cacheDir, expression, attributes: last, graphId })
  } finally {
    rmSync(expression, { force: true })
  }
}

const FLAKES = ['--extra-experimental-features', 'flakes']

function runDir(id: string): string {
  return `/tmp/nix-offload-bench-${id}`
}

/**
 * A run's flake: a hard-linked copy of the tree beside the override and a flake.nix exposing it, so that its directory
 * holds all it needs and its evaluation is pure. Every variant builds `path:<dir>#<app>`, since `evaluate: builder`
 * takes only flakes (see bench/README.md); `path:` needs no git.
 */
async function runExpression(id: string): Promise<Expression> {
  const dir = runDir(id)
  await must(['mkdir', hostPath(lab, dir)])
  await must(['cp', '-al', hostPath(lab, tree), hostPath(lab, `${dir}/pkgs`)])
  writeFileSync(hostPath(lab, `${dir}/default.nix`), overrideExpression('./pkgs', lab.localSystem, shape, id))
  writeFileSync(hostPath(lab, `${dir}/flake.nix`), overrideFlake(lab.localSystem))
  writeFileSync(hostPath(lab, `${dir}/flake.lock`), EMPTY_FLAKE_LOCK)
  chownTree(hostPath(lab, dir), lab.runnerUser)
  return {
    args: ['--option', 'substituters', url, '--option', 'trusted-public-keys', cache.publicKey],
    attributes: apps.map(app => `path:${dir}#${app}`),
    nonce: id
  }
}

/**
 * The store path of the run's flake source, which every variant copied into the runner's store and `evaluate:
 * builder` sent on to the builder. Its name is always `source`, without the nonce, so only the runner's Nix can name
 * it.
 */
async function flakeSource(id: string): Promise<string> {
  const result = await runCommandAs(lab, 'runner', [
    ...NIX,
    ...FLAKES,
    'flake',
    'metadata',
    '--json',
    `path:${runDir(id)}`
  ])
  const parsed: unknown = result.code === 0 ? JSON.parse(result.stdout) : undefined
  const path: unknown =
    typeof parsed === 'object' && parsed !== null && 'path' in parsed ? parsed.path : undefined
  if (typeof path !== 'string')
    throw new Error(`nix flake metadata path:${runDir(id)} failed: ${result.stderr}`)
  return path
}

async function must(argv: string[]): Promise<void> {
  const result = await runOnHost(argv)
  if (result.code !== 0) throw new Error(`${argv.join(' ')} failed: ${result.stderr}`)
}

/** `/usr/bin/time` writing elapsed, user and system seconds and peak RSS (KiB) of a command and its children. */
function timed(file: string): string[] {
  return ['/usr/bin/time', '-f', '%e %U %S %M', '-o', file]
}

function readUsage(filesRead: string[]): Usage {
  const fields = filesRead.map(file => {
    const last = readFileSync(file, 'utf8').trim().split('\n').at(-1) ?? ''
    const [, user = '0', system = '0', maxKiB = '0'] = last.split(' ')
    return { cpuSeconds: Number(user) + Number(system), peakMiB: Number(maxKiB) / 1024 }
  })
  return {
    cpuSeconds: fields.reduce((sum, f) => sum + f.cpuSeconds, 0),
    peakMiB: Math.max(...fields.map(f => f.peakMiB))
  }
}

type Build = (expr: Expression, wrap: (step: string) => string[]) => Promise<number>
const SEED = 'seed-style hook'
const AUTO = 'action, auto'
const EVALUATE = 'action, evaluate: builder'
const seed = seedConfig(lab, b)
const variants: [name: string, build: Build][] = [
  [AUTO, async (expr, wrap) => (await runAction(lab, b, 'auto', expr, MAX_JOBS, apps.length, { wrap })).ms],
  [
    SEED,
    (expr, wrap) =>
      seedBuild(lab, b, seed.seed, { ...expr, args: [...FLAKES, ...expr.args] }, MAX_JOBS, wrap('build'))
  ]
]
const TUNED = 'action, auto, tuned'
if (tuned) {
  const modern = !/^2\.([0-9]|1[0-5])\./.test(`${b.nix}.`)
  const options = ['--option', 'http-connections', '64']
  if (modern) options.push('--option', 'max-substitution-jobs', '64')
  variants.push([
    TUNED,
    async (expr, wrap) =>
      (
        await runAction(
          lab,
          b,
          'auto',
          { ...expr, args: [...expr.args, ...options] },
          modern ? MAX_JOBS : 32,
          apps.length,
          {
            wrap
          }
        )
      ).ms
  ])
}
if (evaluateKnown)
  variants.splice(1, 0, [
    EVALUATE,
    async (expr, wrap) =>
      (
        await runAction(lab, b, 'auto', expr, MAX_JOBS, apps.length, {
          wrap,
          inputs: { evaluate: 'builder' }
        })
      ).ms
  ])

/** One run: the runner emptied of the graph (and the builder too when cold), the build, and what moved where. */
async function measure(build: Build, cold: boolean): Promise<RunFigures> {
  await deleteFromRunner(lab, [graphId])
  if (cold) await deleteFromBuilder(lab, b, [graphId])
  const before = new Set((await pathsWith(builderDatabase(b), graphId)).map(p => p.path))
  server.takeServed()
  const expr = await runExpression(nonce())
  const usageDir = mkdtempSync(join(tmpdir(), 'nix-offload-bench-usage-'))
  let source: string | undefined
  try {
    const usageFiles: string[] = []
    const ms = await build(expr, step => {
      usageFiles.push(join(usageDir, step))
      return timed(join(usageDir, step))
    })
    source = await flakeSource(expr.nonce)
    return { ms, ...readUsage(usageFiles), ...(await moved(expr.nonce, before, source)) }
  } finally {
    rmSync(usageDir, { recursive: true, force: true })
    await removeRun(expr.nonce, source)
  }
}

/** Removes run `id`'s directory and its flake's source from both stores. */
async function removeRun(id: string, source?: string): Promise<void> {
  // Each run's source is new (the nonce is in its default.nix): kept, they would only fill both stores.
  source ??= await flakeSource(id).catch(() => undefined)
  if (source !== undefined) {
    await deletePathsFromRunner(lab, await pathsAmong(runnerDatabase(lab), [source]))
    await deletePathsFromBuilder(lab, b, await pathsAmong(builderDatabase(b), [source]))
  }
  rmSync(hostPath(lab, runDir(id)), { recursive: true, force: true })
}

/**
 * What moved during a run, from the stores' databases and the cache's log. Into the runner: outputs of the graph
 * (substituted) and the apps (from the builder); none may have been built there. Up to the builder: the paths that
 * became valid there without being built or substituted there, and that the runner holds, and the flake's `source`
 * when it went there (new in every run, so it was not there before).
 */
async function moved(
  id: string,
  before: Set<string>,
  source: string
): Promise<Omit<RunFigures, 'ms' | keyof Usage>> {
  const served = server.takeServed()
  const onRunner = await pathsWith(runnerDatabase(lab), graphId)
  const outputs = onRunner.filter(p => !p.path.endsWith('.drv'))
  const builtHere = outputs.filter(p => p.ultimate)
  if (builtHere.length > 0) throw new Error(`built on the runner: ${builtHere.map(p => p.path).join(' ')}`)
  const substituted = outputs.filter(p => !p.path.includes(id))
  const fromBuilder = outputs.filter(p => p.path.includes(id))
  const builderServed = [...served]
  for (const path of substituted) {
    const index = builderServed.findIndex(nar => nar.storePath === path.path)
    if (index >= 0) builderServed.splice(index, 1)
  }
  const substitutedThere = new Set(builderServed.map(nar => nar.storePath))
  const runnerHolds = new Set(onRunner.map(p => p.path))
  const sent = [
    ...(await pathsWith(builderDatabase(b), graphId)).filter(
      p => !before.has(p.path) && !p.ultimate && !substitutedThere.has(p.path) && runnerHolds.has(p.path)
    ),
    ...(await pathsAmong(builderDatabase(b), [source])).filter(p => !p.ultimate)
  ]
  const sum = (paths: { narSize: number }[]): number => paths.reduce((total, p) => total + p.narSize, 0)
  return {
    substitutedBytes: sum(substituted),
    fromBuilderBytes: sum(fromBuilder),
    sentBytes: sum(sent),
    sentDrvs: sent.filter(p => p.path.endsWith('.drv')).length,
    builderSubstitutedBytes: sum(builderServed)
  }
}

const phases: Phase[] = links.flatMap(link => states.map(state => ({ link, state, results: new Map() })))
const failures = new Map<string, string[]>()
const partRuns: PartTimes[] = []
// An interrupted run must not leave builder c substituting from a cache that is gone.
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    writeFileSync(b.nixConf, originalConf)
    void builderCtl(lab, 'restart', b.name).finally(() => process.exit(130))
  })
try {
  writeFileSync(
    b.nixConf,
    `${originalConf}\n# nix-offload bench\nsubstituters = ${url}\ntrusted-public-keys = ${cache.publicKey}\n`
  )
  await builderCtl(lab, 'restart', b.name)
  for (const phase of phases) {
    proxy.setLink(phase.link === 'throttled' ? throttled : undefined)
    const cold = phase.state === 'cold'
    // One warm-up each, not counted; in a warm phase `auto`'s leaves the builder holding the graph's derivations
    // and the apps' inputs, as a builder that ran the same build before holds them.
    for (const [name, build] of variants) await retried(name, () => measure(build, cold), failures)
    for (let run = 0; run < runs; run++) {
      for (const [name, build] of variants) {
        const figures = await retried(
          `${name} (${phase.state}, ${phase.link})`,
          () => measure(build, cold),
          failures
        )
        phase.results.set(name, [...(phase.results.get(name) ?? []), figures])
      }
      process.stderr.write(
        `${phase.state}, ${phase.link}, run ${run + 1}/${runs}: ` +
          variants
            .map(([name]) => `${name} ${((phase.results.get(name)?.at(-1)?.ms ?? 0) / 1000).toFixed(2)} s`)
            .join(', ') +
          '\n'
      )
    }
  }
  proxy.setLink(undefined)
  const context = { lab, b, alias: seed.seed, graphId, expression: runExpression, cleanUp: removeRun }
  for (let run = 0; parts && run < runs + 1; run++) {
    const times = await retried('parts', () => measureParts(context), failures)
    // The first is a warm-up, as for the variants.
    if (run > 0) partRuns.push(times)
  }
} finally {
  writeFileSync(b.nixConf, originalConf)
  await builderCtl(lab, 'restart', b.name)
  seed.restore()
  await proxy.close()
  await server.close()
  await deleteFromRunner(lab, [graphId])
  await deleteFromBuilder(lab, b, [graphId])
  rmSync(hostPath(lab, tree), { recursive: true, force: true })
}

const bytes = outputBytes(shape)
console.log(
  `\nShaped like a nixpkgs override: ${files} .nix files, ${derivationCount(shape)} derivations in ${shape.layers} ` +
    `layers of ${shape.width} and ${shape.apps} apps (overridden), ${(bytes.graph / 2 ** 20).toFixed(0)} MiB of ` +
    `outputs in the cache, ${(bytes.inputs / 2 ** 20).toFixed(0)} MiB of them the apps' inputs; runner Nix ` +
    `${lab.runner.nix}, builder ${b.id} (Nix ${b.nix}), max-jobs ${MAX_JOBS}, dist/main ${bundle}, medians of ${runs} runs; ` +
    `throttled = ${throttled.bytesPerSecond / 1e6} MB/s per connection, ${throttled.delayMs} ms per chunk:`
)
if (!evaluateKnown)
  console.log(`  note: ${EVALUATE} skipped: this checkout's action.yml has no \`evaluate\` input`)
for (const phase of phases)
  printPhase(
    phase,
    variants.map(([name]) => name),
    { seed: SEED, auto: AUTO, evaluate: EVALUATE }
  )
if (partRuns.length > 0) printParts(partRuns)
console.log(`  the cache is kept in ${cacheDir} for the next invocation of this shape (rm -rf it to rebuild)`)
printFailures(failures)
if (bundleId(lab) !== bundle)
  console.log(`  warning: dist/main changed during the runs (was ${bundle}): rerun`)
