/**
 * Benchmarks 1 and 2 of the README, on the lab (run as root after `bash lab/up.sh`):
 *
 *   npx tsx bench/offload.ts --derivations 1 --runs 5     # the whole action vs a plain seed-style nix build
 *   npx tsx bench/offload.ts --derivations 50 --runs 3    # builder max-jobs 4
 *   npx tsx bench/offload.ts --derivations 50 --runs 3 --rtt-ms 20   # the builder behind a 20 ms round trip
 *
 * "plain" is the set-up the seed recipe describes, made by hand once before the runs: an ssh config Host alias for
 * root without multiplexing, a pinned known_hosts, and `nix build --builders '…' --max-jobs 0` as the runner user.
 * Only its `nix build` is timed. "action" is the bundled action as the runner runs it (dist/main, then dist/post, as
 * the runner user): set-up, preflight, build, proof and undo, all timed. Each run builds fresh derivations (a nonce),
 * the two variants alternate, and the medians and their ratio are printed. Nothing here asserts a time.
 *
 * With `--rtt-ms`, both variants reach the builder through bench/latency.ts, a proxy that adds that round trip to the
 * TCP handshake and half of it to every chunk each way (this kernel has no netem).
 */
import { builder, builderInputs, loadLab, runMain, runPost } from '../__tests__/lab/harness.js'
import { startLatencyProxy } from './latency.js'
import { expression, median, SEED_ALIAS, seedBuild, seedConfig } from './seed.js'

const lab = loadLab()
const count = Number(option('--derivations', '1'))
const runs = Number(option('--runs', '5'))
const rttMs = Number(option('--rtt-ms', '0'))
const maxJobs = count > 1 ? 4 : 1
const direct = builder(lab, 'a')
const proxy = rttMs > 0 ? await startLatencyProxy(direct.host, direct.port, rttMs / 2) : undefined
/** Builder a, or the proxy in front of it: same host key, so the same pin with the proxy's port. */
const a = { ...direct, port: proxy?.port ?? direct.port }

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(name)
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback
}

async function plainBuild(): Promise<number> {
  return (await seedBuild(lab, a, SEED_ALIAS, count, maxJobs)) / 1000
}

async function actionBuild(): Promise<number> {
  const { args, attributes } = expression(lab, count)
  const started = performance.now()
  const main = await runMain(lab, {
    ...builderInputs(lab, 'a'),
    port: String(a.port),
    'max-jobs': String(maxJobs),
    args: args.join(' '),
    installables: attributes.join('\n')
  })
  const post = await runPost(lab, main)
  const seconds = (performance.now() - started) / 1000
  if (main.code !== 0 || post.code !== 0 || main.outputs['remote-builds'] !== String(count)) {
    throw new Error(`the action failed: ${main.stdout}\n${main.stderr}`)
  }
  return seconds
}

const restore = seedConfig(lab, a)
const plain: number[] = []
const action: number[] = []
try {
  await plainBuild() // warm both paths once (daemon caches, page cache); not counted
  await actionBuild()
  for (let run = 0; run < runs; run++) {
    plain.push(await plainBuild())
    action.push(await actionBuild())
    process.stderr.write(
      `run ${run + 1}/${runs}: plain ${plain.at(-1)?.toFixed(2)} s, action ${action.at(-1)?.toFixed(2)} s\n`
    )
  }
} finally {
  restore()
  await proxy?.close()
}
const [p, x] = [median(plain), median(action)]
const rows = [
  ['variant', 'median s', 'per derivation ms', 'runs'],
  [
    'plain seed-style nix build',
    p.toFixed(2),
    ((p / count) * 1000).toFixed(0),
    plain.map(v => v.toFixed(2)).join(' ')
  ],
  [
    'nix-offload (setup+build+proof+post)',
    x.toFixed(2),
    ((x / count) * 1000).toFixed(0),
    action.map(v => v.toFixed(2)).join(' ')
  ]
]
console.log(
  `\n${count} fresh derivation(s), builder max-jobs ${maxJobs}, ${runs} runs each` +
    (rttMs > 0 ? `, builder behind a ${rttMs} ms round trip:` : ':')
)
for (const row of rows)
  console.log(`  ${row[0]?.padEnd(40)} ${row[1]?.padStart(9)} ${row[2]?.padStart(18)}   ${row[3]}`)
console.log(`  ratio action / plain: ${(x / p).toFixed(2)}×   (plain / action: ${(p / x).toFixed(2)}×)`)
