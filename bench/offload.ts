/**
 * Benchmarks 1 and 2 of the README, on the lab (run as root after `bash lab/up.sh`):
 *
 *   npx tsx bench/offload.ts --derivations 1 --runs 5     # the whole action vs a plain seed-style nix build
 *   npx tsx bench/offload.ts --derivations 50 --runs 3    # builder max-jobs 4
 *
 * "plain" is the set-up the seed recipe describes, made by hand once before the runs: an ssh config Host alias for
 * root without multiplexing, a pinned known_hosts, and `nix build --builders '…' --max-jobs 0` as the runner user.
 * Only its `nix build` is timed. "action" is the bundled action as the runner runs it (dist/main, then dist/post, as
 * the runner user): set-up, preflight, build, proof and undo, all timed. Each run builds fresh derivations (a nonce),
 * the two variants alternate, and the medians and their ratio are printed. Nothing here asserts a time.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import {
  builder,
  builderInputs,
  chownTree,
  loadLab,
  runCommandAs,
  runMain,
  runPost
} from '../__tests__/lab/harness.js'

const lab = loadLab()
const a = builder(lab, 'a')
const count = Number(option('--derivations', '1'))
const runs = Number(option('--runs', '5'))
const maxJobs = count > 1 ? 4 : 1

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(name)
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback
}

/** A file of `count` derivations that no store holds yet. */
function expression(): { args: string[]; attributes: string[] } {
  const nonce = randomBytes(6).toString('hex')
  const dir = `/tmp/nix-offload-bench-${nonce}`
  mkdirSync(dir)
  const body = Array.from(
    { length: count },
    (_, i) =>
      `  d${i + 1} = builtins.derivation { name = "bench-${nonce}-${i + 1}"; system = "${lab.localSystem}"; ` +
      `builder = "/bin/sh"; args = [ "-c" "echo ${i + 1} > $out" ]; };`
  ).join('\n')
  writeFileSync(`${dir}/default.nix`, `{\n${body}\n}\n`)
  chownTree(dir, lab.runnerUser)
  return {
    args: ['-f', `${dir}/default.nix`],
    attributes: Array.from({ length: count }, (_, i) => `d${i + 1}`)
  }
}

const SEED_ALIAS = 'nix-offload-bench-seed'
const ROOT_SSH = '/root/.ssh'

/** The seed recipe by hand: a Host alias for root (no ControlMaster), the key, a pinned known_hosts. */
function seedConfig(): () => void {
  const config = `${ROOT_SSH}/config`
  const original = existsSync(config) ? readFileSync(config) : undefined
  const hadDir = existsSync(ROOT_SSH)
  mkdirSync(ROOT_SSH, { recursive: true, mode: 0o700 })
  writeFileSync(`${ROOT_SSH}/bench_known_hosts`, `[${a.host}]:${a.port} ${a.hostPublicKey}\n`)
  writeFileSync(
    config,
    `Host ${SEED_ALIAS}\n  HostName ${a.host}\n  Port ${a.port}\n  User ${a.user}\n  IdentityFile ${lab.clientKey}\n` +
      `  UserKnownHostsFile ${ROOT_SSH}/bench_known_hosts\n  StrictHostKeyChecking yes\n  BatchMode yes\n` +
      (original === undefined ? '' : original.toString()),
    { mode: 0o600 }
  )
  return () => {
    rmSync(`${ROOT_SSH}/bench_known_hosts`, { force: true })
    if (original === undefined) rmSync(config, { force: true })
    else writeFileSync(config, original)
    if (!hadDir) rmSync(ROOT_SSH, { recursive: true, force: true })
  }
}

async function plainBuild(): Promise<number> {
  const { args, attributes } = expression()
  const started = performance.now()
  const result = await runCommandAs(lab, 'runner', [
    'nix',
    '--extra-experimental-features',
    'nix-command',
    'build',
    '--no-link',
    '--max-jobs',
    '0',
    '--builders',
    `ssh-ng://${a.user}@${SEED_ALIAS} ${lab.localSystem} - ${maxJobs} 1 - - -`,
    ...args,
    ...attributes
  ])
  const seconds = (performance.now() - started) / 1000
  if (result.code !== 0) throw new Error(`plain nix build failed: ${result.stderr}`)
  return seconds
}

async function actionBuild(): Promise<number> {
  const { args, attributes } = expression()
  const started = performance.now()
  const main = await runMain(lab, {
    ...builderInputs(lab, 'a'),
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

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

const restore = seedConfig()
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
console.log(`\n${count} fresh derivation(s), builder max-jobs ${maxJobs}, ${runs} runs each:`)
for (const row of rows)
  console.log(`  ${row[0]?.padEnd(40)} ${row[1]?.padStart(9)} ${row[2]?.padStart(18)}   ${row[3]}`)
console.log(`  ratio action / plain: ${(x / p).toFixed(2)}×   (plain / action: ${(p / x).toFixed(2)}×)`)
