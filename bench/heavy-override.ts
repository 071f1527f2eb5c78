/**
 * Benchmark 2 of bench/README.md, "heavy override" (run as root; the lab is up):
 *
 *   npx tsx bench/heavy-override.ts --runs 5
 *   LAB_RUNNER_NIX=2.34 LAB_BUILDER_NIX=2.34 npx tsx bench/heavy-override.ts --runs 5
 *
 * A graph of 30 fresh derivations in 6 layers of 5. Each derivation of a layer depends on all 5 of the layer before,
 * and the first layer on a source that only the runner has (`builtins.path` of a directory next to the expression).
 * Each output is 8 MiB from /dev/urandom, which holds no store path, so an output's closure is itself. The build
 * asks for the 5 outputs of the last layer (40 MiB).
 *
 * Variants, alternating after one warm-up each: the seed-style build (root's Host alias, `--builders`,
 * `--max-jobs 0`), the whole action (main+post) with each `--strategy` (default hook,remote-store), and with
 * `--floor` the remote-store strategy's two commands alone (bench/bare.ts). All on `--builder` (default c) with
 * max-jobs 4.
 *
 * Besides the time, each run counts what the runner received, from the runner's own store database: the paths of
 * the run (its nonce) that Nix registered as copied in (not `ultimate`), and their NAR size. "Sent" is the same count
 * in the builder's database: what reached it from the runner. The paths are deleted from both stores at the end.
 * Nothing here asserts a time; the script fails if a derivation was built on the runner.
 */
import { loadLab } from '../__tests__/lab/harness.js'
import { bundleId, parseStrategies, runAction } from './action.js'
import { bareConfig, bareStoreBuild } from './bare.js'
import {
  benchBuilder,
  type Expression,
  median,
  nonce,
  option,
  printFailures,
  retried,
  seedBuild,
  seedConfig,
  writeExpression
} from './seed.js'
import {
  builderDatabase,
  deleteFromBuilder,
  deleteFromRunner,
  pathsWith,
  runnerDatabase,
  totalBytes
} from './store-paths.js'

const LAYERS = 6
const WIDTH = 5
const OUTPUT_BYTES = 8 * 1024 * 1024
const MAX_JOBS = 4

const lab = loadLab()
const bundle = bundleId(lab)
const runs = Number(option('--runs', '5'))
const strategies = parseStrategies(option('--strategy', 'hook,remote-store'))
const withFloor = process.argv.includes('--floor')
const b = benchBuilder(lab)

/** The graph, written fresh for one run. */
function heavyGraph(): Expression {
  const id = nonce()
  const name = (layer: number, i: number): string => `l${layer}n${i}`
  const attributes: string[] = []
  for (let layer = 1; layer <= LAYERS; layer++) {
    const deps =
      layer === 1 ? 'src' : Array.from({ length: WIDTH }, (_, i) => name(layer - 1, i + 1)).join(' ')
    for (let i = 1; i <= WIDTH; i++)
      attributes.push(`  ${name(layer, i)} = mk "${name(layer, i)}" [ ${deps} ];`)
  }
  // PATH is /path-not-set in a build: absolute paths only. /usr/bin/head is in the host's Debian and in every
  // root filesystem of the lab. The inputs are only tested for existence, so that no output refers to them. No
  // `exec` before head: coreutils closes stderr (the log pipe) in an atexit handler, before it has exited, and
  // without a sandbox Nix (seen on 2.8) takes the log's end for the builder's and SIGKILLs the build user's processes
  // ("failed due to signal 9"); the shell keeps the pipe open until head is gone.
  const text =
    `let\n` +
    `  system = "${lab.localSystem}";\n` +
    `  src = builtins.path { path = ./src; name = "heavy-${id}-src"; };\n` +
    `  mk = n: deps: builtins.derivation {\n` +
    `    name = "heavy-${id}-\${n}";\n` +
    `    inherit system;\n` +
    `    builder = "/bin/sh";\n` +
    `    args = [ "-c" "for d in \${toString deps}; do [ -e $d ] || exit 1; done; ` +
    `/usr/bin/head -c ${OUTPUT_BYTES} /dev/urandom > $out" ];\n` +
    `  };\n` +
    `in rec {\n${attributes.join('\n')}\n}\n`
  const last = Array.from({ length: WIDTH }, (_, i) => name(LAYERS, i + 1))
  return writeExpression(lab, id, text, { 'src/seed': `only on the runner: ${id}\n` }, last)
}

interface RunFigures {
  ms: number
  /** NAR bytes and paths the runner's store received (copied in) during the run. */
  receivedBytes: number
  receivedPaths: number
  /** NAR bytes that the builder's store received from the runner during the run. */
  sentBytes: number
  sentPaths: number
  /** What the action's report says it received, as a check of its own count. */
  reportedReceivedBytes?: number
}

const nonces: string[] = []

/** A build's time, and for the action the bytes its report counts. */
interface Built {
  ms: number
  reportedReceivedBytes?: number
}

async function measure(variant: string, build: (expr: Expression) => Promise<Built>): Promise<RunFigures> {
  const expr = heavyGraph()
  nonces.push(expr.nonce)
  const { ms, reportedReceivedBytes } = await build(expr)
  const onRunner = await pathsWith(runnerDatabase(lab), expr.nonce)
  // The derivations and the source are written on the runner by the evaluation, and Nix 2.34 does not mark them
  // ultimate there: only the outputs can have come from the builder.
  const outputs = onRunner.filter(p => !p.path.endsWith('.drv') && !p.path.endsWith('-src'))
  const builtHere = outputs.filter(p => p.ultimate)
  if (builtHere.length > 0)
    throw new Error(`${variant}: built on the runner: ${builtHere.map(p => p.path).join(' ')}`)
  const received = outputs.filter(p => !p.ultimate)
  const sent = (await pathsWith(builderDatabase(b), expr.nonce)).filter(p => !p.ultimate)
  return {
    ms,
    reportedReceivedBytes,
    receivedBytes: totalBytes(received),
    receivedPaths: received.length,
    sentBytes: totalBytes(sent),
    sentPaths: sent.length
  }
}

const seed = seedConfig(lab, b)
const bare = bareConfig(lab, b)
const SEED = 'plain seed-style nix build'
const FLOOR = 'bare remote-store commands'
type Variant = [name: string, build: (expr: Expression) => Promise<Built>]
const variants: Variant[] = [
  [SEED, async expr => ({ ms: await seedBuild(lab, b, seed.seed, expr, MAX_JOBS) })],
  ...strategies.map((strategy): Variant => [
    `nix-offload, strategy ${strategy} (main+post)`,
    async expr => {
      const { ms, reported } = await runAction(lab, b, strategy, expr, MAX_JOBS, LAYERS * WIDTH)
      return { ms, reportedReceivedBytes: reported?.received }
    }
  ])
]
if (withFloor)
  variants.push([
    FLOOR,
    async expr => ({ ms: (await bareStoreBuild(lab, bare, bare.plain, expr, MAX_JOBS)).ms })
  ])

const results = new Map<string, RunFigures[]>(variants.map(([name]) => [name, []]))
const failures = new Map<string, string[]>()
try {
  // One warm-up each; not counted.
  for (const [name, build] of variants) await retried(name, () => measure(name, build), failures)
  for (let run = 0; run < runs; run++) {
    for (const [name, build] of variants)
      results.get(name)?.push(await retried(name, () => measure(name, build), failures))
    process.stderr.write(
      `run ${run + 1}/${runs}: ` +
        variants
          .map(([name]) => {
            const last = results.get(name)?.at(-1)
            return `${name} ${((last?.ms ?? 0) / 1000).toFixed(2)} s, ${mib(last?.receivedBytes ?? 0)} MiB back`
          })
          .join('; ') +
        '\n'
    )
  }
} finally {
  seed.restore()
  bare.restore()
  await deleteFromRunner(lab, nonces)
  await deleteFromBuilder(lab, b, nonces)
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1)
}

const figure = (name: string, pick: (f: RunFigures) => number): number =>
  median((results.get(name) ?? []).map(pick))
console.log(
  `\nHeavy override: ${LAYERS * WIDTH} fresh derivations in ${LAYERS} layers of ${WIDTH}, 8 MiB each, ` +
    `${WIDTH} final outputs (${mib(WIDTH * OUTPUT_BYTES)} MiB of content) requested; runner Nix ${lab.runner.nix}, ` +
    `builder ${b.id} (Nix ${b.nix}), max-jobs ${MAX_JOBS}, dist/main ${bundle}, medians of ${runs} runs:`
)
console.log(
  `  ${'variant'.padEnd(46)} ${'median s'.padStart(9)} ${'received bytes'.padStart(15)} ${'MiB'.padStart(6)} ` +
    `${'paths'.padStart(5)} ${'sent KiB'.padStart(9)} ${'paths'.padStart(5)} ${'report: received MiB'.padStart(20)}   runs (s)`
)
for (const [name] of variants) {
  const reported = (results.get(name) ?? []).flatMap(f =>
    f.reportedReceivedBytes === undefined ? [] : [f.reportedReceivedBytes]
  )
  console.log(
    `  ${name.padEnd(46)} ${(figure(name, f => f.ms) / 1000).toFixed(2).padStart(9)} ` +
      `${String(figure(name, f => f.receivedBytes)).padStart(15)} ${mib(figure(name, f => f.receivedBytes)).padStart(6)} ` +
      `${String(figure(name, f => f.receivedPaths)).padStart(5)} ` +
      `${(figure(name, f => f.sentBytes) / 1024).toFixed(1).padStart(9)} ${String(figure(name, f => f.sentPaths)).padStart(5)} ` +
      `${(reported.length > 0 ? mib(median(reported)) : '–').padStart(20)}   ` +
      (results.get(name) ?? []).map(f => (f.ms / 1000).toFixed(2)).join(' ')
  )
}
const seedMs = figure(SEED, f => f.ms)
for (const [name] of variants.slice(1))
  console.log(
    `  ${name}: time seed-style / this ${(seedMs / figure(name, f => f.ms)).toFixed(2)}×; ` +
      `received ${(figure(name, f => f.receivedBytes) / figure(SEED, f => f.receivedBytes)).toFixed(2)}× seed-style's bytes`
  )
printFailures(failures)
if (bundleId(lab) !== bundle)
  console.log(`  warning: dist/main changed during the runs (was ${bundle}): rerun`)
