/**
 * Benchmarks 1 and 3 of bench/README.md, on the lab (run as root; the lab is up):
 *
 *   npx tsx bench/offload.ts --derivations 50 --runs 5 --strategy hook,remote-store --floor   # 50 tiny derivations
 *   npx tsx bench/offload.ts --derivations 1 --runs 5 --strategy hook,remote-store            # one tiny derivation
 *   LAB_RUNNER_NIX=2.34 LAB_BUILDER_NIX=2.34 npx tsx bench/offload.ts …                       # runner and builder 2.34
 *   npx tsx bench/offload.ts --derivations 50 --runs 3 --rtt-ms 20   # the builder behind a 20 ms round trip
 *   npx tsx bench/offload.ts --derivations 1 --runs 3 --eval-work 12000000   # an evaluation of about 4 s first
 *
 * "plain" is the set-up the seed recipe describes, made by hand once before the runs: an ssh config Host alias for
 * root without multiplexing, a pinned known_hosts, and `nix build --builders '…' --max-jobs 0` as the runner user.
 * Only its `nix build` is timed. "action" is the bundled action as the runner runs it (dist/main, then dist/post, as
 * the runner user), once per `--strategy` (comma-separated: auto, hook, remote-store; default auto, the input's
 * default): set-up, preflight, build, proof, copy back and undo, all timed. `--floor` adds the remote-store
 * strategy's bare floor: its two commands alone (bench/bare.ts), once with a plain alias and once with ControlMaster
 * (the master closed after each run), and on a runner with Nix 2.25 or later the one `nix copy --from` session the
 * action runs there instead, with a plain alias. Each run builds fresh derivations (a nonce), the variants alternate after one
 * warm-up each, and the medians and their ratios are printed. Nothing here asserts a time.
 *
 * The builder is `--builder` (default c, which the lab tests leave alone), with max-jobs 4 for more than one
 * derivation. With `--rtt-ms`, every variant reaches it through bench/latency.ts, a proxy that adds that round trip to
 * the TCP handshake and half of it to every chunk each way (this kernel has no netem).
 */
import { loadLab } from '../__tests__/lab/harness.js'
import { bundleId, parseStrategies, runAction } from './action.js'
import { bareConfig, bareCopyBuild, bareStoreBuild } from './bare.js'
import { startLatencyProxy } from './latency.js'
import {
  benchBuilder,
  expression,
  freshStore,
  median,
  option,
  printFailures,
  retried,
  seedBuild,
  seedConfig,
  storeState
} from './seed.js'

const lab = loadLab()
const bundle = bundleId(lab)
const count = Number(option('--derivations', '1'))
const runs = Number(option('--runs', '5'))
const rttMs = Number(option('--rtt-ms', '0'))
const strategies = parseStrategies(option('--strategy', 'auto'))
const withFloor = process.argv.includes('--floor')
/** Steps of pure evaluation work every run's expression does first (seed.ts `expression`): 0 for none. */
const evalWork = Number(option('--eval-work', '0'))
const maxJobs = count > 1 ? 4 : 1
const direct = benchBuilder(lab)
await freshStore(lab, direct)
const proxy = rttMs > 0 ? await startLatencyProxy(direct.host, direct.port, rttMs / 2) : undefined
/** The builder, or the proxy in front of it: same host key, so the same pin with the proxy's port. */
const b = { ...direct, port: proxy?.port ?? direct.port }

const seed = seedConfig(lab, b)
const bare = bareConfig(lab, b)
const PLAIN = 'plain seed-style nix build'
const FLOOR = 'bare floor: build --store + copy --from'
const FLOOR_MUX = 'bare floor, ControlMaster'
const FLOOR_ONE = 'bare floor, one session: copy --from'
/** `nix copy --out-link`, which the one-session form needs, is in Nix 2.25 and later. */
const oneSession = Number(lab.runner.nix.split('.')[1] ?? 0) >= 25
const actionName = (strategy: string): string => `nix-offload, strategy ${strategy} (main+post)`
/** What the report says each strategy input chose, run by run. */
const chosen = new Map<string, string[]>()
type Variant = [name: string, measure: () => Promise<number>]
const variants: Variant[] = [
  [PLAIN, () => seedBuild(lab, b, seed.seed, expression(lab, count, evalWork), maxJobs)],
  ...strategies.map((strategy): Variant => [
    actionName(strategy),
    async () => {
      const run = await runAction(lab, b, strategy, expression(lab, count, evalWork), maxJobs, count)
      if (run.chose !== undefined) chosen.set(strategy, [...(chosen.get(strategy) ?? []), run.chose])
      return run.ms
    }
  ])
]
if (withFloor) {
  variants.push(
    [
      FLOOR,
      async () => (await bareStoreBuild(lab, bare, bare.plain, expression(lab, count, evalWork), maxJobs)).ms
    ],
    [
      FLOOR_MUX,
      async () => {
        const { ms } = await bareStoreBuild(lab, bare, bare.mux, expression(lab, count, evalWork), maxJobs)
        await bare.closeMaster()
        return ms
      }
    ]
  )
  if (oneSession)
    variants.push([
      FLOOR_ONE,
      () => bareCopyBuild(lab, bare, bare.plain, expression(lab, count, evalWork), maxJobs)
    ])
}

const results = new Map<string, number[]>(variants.map(([name]) => [name, []]))
const failures = new Map<string, string[]>()
try {
  // Warm each path once (daemon caches, page cache); not counted.
  for (const [name, measure] of variants) await retried(name, measure, failures)
  for (let run = 0; run < runs; run++) {
    for (const [name, measure] of variants) results.get(name)?.push(await retried(name, measure, failures))
    process.stderr.write(
      `run ${run + 1}/${runs}: ` +
        variants
          .map(([name]) => `${name} ${((results.get(name)?.at(-1) ?? 0) / 1000).toFixed(2)} s`)
          .join(', ') +
        '\n'
    )
  }
} finally {
  seed.restore()
  bare.restore()
  await proxy?.close()
}

const ms = (name: string): number => median(results.get(name) ?? [])
console.log(
  `\n${count} fresh derivation(s), runner Nix ${lab.runner.nix}, builder ${direct.id} (Nix ${direct.nix}), ` +
    `max-jobs ${maxJobs}, dist/main ${bundle}, medians of ${runs} runs` +
    (evalWork > 0 ? `, an evaluation of ${evalWork} steps first` : '') +
    (rttMs > 0 ? `, builder behind a ${rttMs} ms round trip:` : ':')
)
console.log(`  builder ${direct.id} at the end: ${storeState(direct)}`)
console.log(`  ${'variant'.padEnd(46)} ${'median s'.padStart(9)} ${'ms/derivation'.padStart(14)}   runs (s)`)
for (const [name] of variants)
  console.log(
    `  ${name.padEnd(46)} ${(ms(name) / 1000).toFixed(2).padStart(9)} ${(ms(name) / count).toFixed(0).padStart(14)}   ` +
      (results.get(name) ?? []).map(v => (v / 1000).toFixed(2)).join(' ')
  )
for (const strategy of strategies) {
  const x = ms(actionName(strategy))
  const line = [
    `  ${strategy}: action / plain ${(x / ms(PLAIN)).toFixed(2)}× (plain / action ${(ms(PLAIN) / x).toFixed(2)}×)`
  ]
  if (withFloor)
    line.push(
      `action / floor ${(x / ms(FLOOR)).toFixed(2)}×`,
      `action / floor with ControlMaster ${(x / ms(FLOOR_MUX)).toFixed(2)}×`
    )
  if (withFloor && oneSession) line.push(`action / one-session floor ${(x / ms(FLOOR_ONE)).toFixed(2)}×`)
  const choices = [...new Set(chosen.get(strategy) ?? [])]
  if (choices.length > 0) line.push(`the report's strategy: ${choices.join(', ')}`)
  console.log(line.join(', '))
}
if (withFloor) console.log(`  floor: plain / floor ${(ms(PLAIN) / ms(FLOOR)).toFixed(2)}×`)
if (withFloor && oneSession)
  console.log(`  one-session floor: plain / floor ${(ms(PLAIN) / ms(FLOOR_ONE)).toFixed(2)}×`)
printFailures(failures)
if (bundleId(lab) !== bundle)
  console.log(`  warning: dist/main changed during the runs (was ${bundle}): rerun`)
