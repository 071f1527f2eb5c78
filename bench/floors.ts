/**
 * The floors under benchmarks 1 and 2: what the parts that no action can avoid cost on this machine, measured in one
 * invocation beside the plain seed-style build they are compared with (run as root after `bash lab/up.sh`):
 *
 *   npx tsx bench/floors.ts --runs 5
 *
 * Benchmark 1 times a whole action: at least one Node start for main and one for post, one new SSH connection to
 * the builder (the plain build pays it too), and the build through it. Benchmark 2's 50 derivations go through Nix's
 * build hook one at a time however the connection is made, so a bare `nix build` through an already open master is
 * the least any action can take. Medians of `--runs`; nothing here asserts a time.
 */
import { existsSync } from 'node:fs'
import { loadLab, ROOT, runCommandAs } from '../__tests__/lab/harness.js'
import { benchBuilder, expression, median, seedBuild, seedConfig } from './seed.js'

const lab = loadLab()
// The Node and dist/ paths below are the host's: a runner in a root filesystem has its own.
if (lab.runner.root !== '')
  throw new Error('bench/floors.ts measures the runner on the host Nix: unset LAB_RUNNER_NIX')
const b = benchBuilder(lab)
const runs = Number(process.argv[process.argv.indexOf('--runs') + 1] || '5')

async function timed(argv: string[], runAs: 'runner' | 'root', expectCode = 0): Promise<number> {
  const started = performance.now()
  const result = await runCommandAs(lab, runAs, argv)
  const ms = performance.now() - started
  if (result.code !== expectCode) throw new Error(`${argv.join(' ')} exited ${result.code}: ${result.stderr}`)
  return ms
}

function build(alias: string, count: number, maxJobs: number): Promise<number> {
  return seedBuild(lab, b, alias, expression(lab, count), maxJobs)
}

const main = `${ROOT}/dist/main/index.js`
const post = `${ROOT}/dist/post/index.js`
if (!existsSync(main) || !existsSync(post)) throw new Error('run `npm run bundle` first')
const node = process.execPath
const ssh = (alias: string): string[] => ['ssh', alias, 'true']

const aliases = seedConfig(lab, b)
const measures: [string, () => Promise<number>][] = [
  ['Node start, nothing loaded (runner)', () => timed([node, '-e', ''], 'runner')],
  // Without inputs main fails on the first one it reads. With no `nix` on PATH its runner probe, which starts
  // first, fails at once instead of waiting for three `nix` processes: Node start, the bundle loaded, one input read.
  [
    'dist/main: Node start + bundle load',
    () =>
      timed(
        [
          node,
          '--input-type=module',
          '-e',
          `process.env.PATH = '/nonexistent'; await import(${JSON.stringify(main)})`
        ],
        'runner',
        1
      )
  ],
  // Without state post has nothing to undo: Node start, the bundle loaded, the state read.
  ['dist/post: Node start + bundle load', () => timed([node, post], 'runner')],
  ['sudo -n true', () => timed(['sudo', '-n', 'true'], 'runner')],
  ['new SSH connection as root (ssh alias true)', () => timed(ssh(aliases.seed), 'root')],
  ['command through an open master (ssh alias true)', () => timed(ssh(aliases.mux), 'root')],
  ['plain seed-style build, 1 derivation', () => build(aliases.seed, 1, 1)],
  ['build through an open master, 1 derivation', () => build(aliases.mux, 1, 1)],
  ['plain seed-style build, 50 derivations (max-jobs 4)', () => build(aliases.seed, 50, 4)],
  ['build through an open master, 50 derivations (max-jobs 4)', () => build(aliases.mux, 50, 4)]
]

const results = new Map<string, number[]>()
try {
  await timed(ssh(aliases.mux), 'root') // opens the master (ControlPersist keeps it), and warms the caches
  for (const [, measure] of measures) await measure()
  for (let run = 0; run < runs; run++) {
    for (const [name, measure] of measures) results.set(name, [...(results.get(name) ?? []), await measure()])
    process.stderr.write(`run ${run + 1}/${runs} done\n`)
  }
} finally {
  await runCommandAs(lab, 'root', ['ssh', '-O', 'exit', aliases.mux])
  aliases.restore()
}

const ms = (name: string): number => median(results.get(name) ?? [])
console.log(`\nMedians of ${runs} runs (ms):`)
for (const [name] of measures) console.log(`  ${name.padEnd(60)} ${ms(name).toFixed(0).padStart(7)}`)

const plain1 = ms('plain seed-style build, 1 derivation')
const floor1 =
  ms('dist/main: Node start + bundle load') +
  ms('new SSH connection as root (ssh alias true)') +
  ms('build through an open master, 1 derivation') +
  ms('dist/post: Node start + bundle load')
console.log(
  `\nBenchmark 1 floor: main's start + one new connection + the build through it + post's start = ` +
    `${floor1.toFixed(0)} ms, ${(floor1 / plain1).toFixed(2)}× the plain build (${plain1.toFixed(0)} ms); ` +
    `the target is ≤ 1.5×.`
)
const plain50 = ms('plain seed-style build, 50 derivations (max-jobs 4)')
const floor50 = ms('build through an open master, 50 derivations (max-jobs 4)')
console.log(
  `Benchmark 2 floor: the bare build through an open master = ${floor50.toFixed(0)} ms ` +
    `(${(floor50 / 50).toFixed(0)} ms per derivation), ${(plain50 / floor50).toFixed(2)}× faster than plain ` +
    `(${plain50.toFixed(0)} ms); the target is ≥ 8× and ≤ 25 ms per derivation.`
)
