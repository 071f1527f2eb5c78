/**
 * What the offload benchmarks share: the command line, the builder under test, fresh derivations, and the seed
 * recipe's ssh config for root with its `nix build`. Every path here is the runner's: on a runner in a root filesystem
 * (LAB_RUNNER_NIX=2.26 or 2.34) the files are written under that root (hostPath) and the commands run inside it.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import {
  builder,
  builderCtl,
  chownTree,
  hostPath,
  type Lab,
  type LabBuilder,
  runnerArgv,
  runOnHost
} from '../__tests__/lab/harness.js'

/** `--name value` from the command line, or `fallback`. */
export function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(name)
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback
}

/**
 * The builder the benchmarks use, `--builder` (default `c`, on LAB_BUILDER_NIX): the lab tests use `a` and `b`, so a
 * benchmark on `c` neither breaks a running test nor counts its builds.
 */
export function benchBuilder(lab: Lab): LabBuilder {
  return builder(lab, option('--builder', 'c'))
}

/**
 * How full the builder's store is: its paths and the size of its SQLite write-ahead log. Every daemon connection reads
 * that log anew, and Nix 2.34's grows with every build the lab's benchmarks leave there (73 MiB after some 20,000
 * paths, about 50 ms of CPU per connection): figures from different days compare only with the same state.
 */
export function storeState(b: LabBuilder): string {
  const paths = readdirSync(b.storeDir).filter(name => name !== '.links').length
  const wal = `${dirname(b.storeDir)}/var/nix/db/db.sqlite-wal`
  let walBytes = 0
  try {
    walBytes = statSync(wal).size
  } catch {
    // none: Nix checkpointed it, or this store's database keeps no log
  }
  return `${paths} store paths, a ${(walBytes / 2 ** 20).toFixed(1)} MiB SQLite log`
}

/**
 * `--fresh-store`: the benchmark builder's store emptied (its daemon stopped, its store and database removed, then
 * started again), so that figures of different days start from the same state. Only the benchmarks use builder `c`.
 */
export async function freshStore(lab: Lab, b: LabBuilder): Promise<void> {
  if (!process.argv.includes('--fresh-store')) return
  if (b.name !== 'c')
    throw new Error(`--fresh-store empties builder c only, not ${b.name}: the lab tests use the others`)
  await builderCtl(lab, 'stop', b.name)
  rmSync(b.storeDir, { recursive: true, force: true })
  rmSync(`${dirname(b.storeDir)}/var/nix/db`, { recursive: true, force: true })
  await builderCtl(lab, 'start', b.name)
}

export function nonce(): string {
  return randomBytes(6).toString('hex')
}

/** A Nix expression file that the runner user can read: `-f <file>` and the attributes to build. */
export interface Expression {
  args: string[]
  attributes: string[]
  /** In every derivation's name, so that its paths can be found in a store. */
  nonce: string
}

/**
 * A file of `count` tiny derivations that no store holds yet. With `evalWork` above 0, every name depends on a sum
 * over that many numbers, evaluated once for the file: an evaluation as heavy as a nixpkgs override's (on the lab's
 * Nix 2.8, 4 M steps take about a second and 12 M about four), and a build of one tiny derivation.
 */
export function expression(lab: Lab, count: number, evalWork = 0): Expression {
  const id = nonce()
  const work =
    evalWork > 0 ? `builtins.foldl' (acc: x: acc + x) 0 (builtins.genList (i: i) ${evalWork})` : '0'
  const body = Array.from(
    { length: count },
    (_, i) =>
      `  d${i + 1} = builtins.derivation { name = "bench-${id}-${i + 1}-\${toString work}"; ` +
      `system = "${lab.localSystem}"; builder = "/bin/sh"; args = [ "-c" "echo ${i + 1} > $out" ]; };`
  ).join('\n')
  const attributes = Array.from({ length: count }, (_, i) => `d${i + 1}`)
  return writeExpression(lab, id, `let work = ${work}; in {\n${body}\n}\n`, {}, attributes)
}

/** Writes `default.nix` (and `files`, relative to it) into a fresh runner directory the runner user owns. */
export function writeExpression(
  lab: Lab,
  id: string,
  text: string,
  files: Record<string, string>,
  attributes: string[]
): Expression {
  const dir = `/tmp/nix-offload-bench-${id}`
  mkdirSync(hostPath(lab, dir))
  writeFileSync(hostPath(lab, `${dir}/default.nix`), text)
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(hostPath(lab, `${dir}/${name}`)), { recursive: true })
    writeFileSync(hostPath(lab, `${dir}/${name}`), content)
  }
  chownTree(hostPath(lab, dir), lab.runnerUser)
  return {
    args: ['-f', `${dir}/default.nix`],
    attributes,
    nonce: id
  }
}

/** Root's Host aliases for the seed recipe: `seed` without multiplexing, `mux` the same with ControlMaster. */
export interface SeedSsh {
  seed: string
  mux: string
  restore: () => void
}

/**
 * The seed recipe by hand, for root on the runner: a Host alias without multiplexing, the key, a pinned known_hosts;
 * plus the same alias with ControlMaster. The aliases are unique to this invocation and live in a file of their own
 * under the runner's /etc/ssh/ssh_config.d, which root's ssh (the daemon's build hook) reads as it reads
 * /root/.ssh/config. Root's ~/.ssh stays untouched: the lab tests compare it byte for byte while they run, and another
 * benchmark may be using it.
 */
export function seedConfig(lab: Lab, b: LabBuilder): SeedSsh {
  const id = nonce()
  const dir = `/etc/ssh/nix-offload-bench-${id}`
  const file = `/etc/ssh/ssh_config.d/nix-offload-bench-${id}.conf`
  const [seed, mux] = [`nix-offload-bench-seed-${id}`, `nix-offload-bench-mux-${id}`]
  mkdirSync(hostPath(lab, dir), { mode: 0o700 })
  writeFileSync(hostPath(lab, `${dir}/key`), readKey(lab), { mode: 0o600 })
  writeFileSync(hostPath(lab, `${dir}/known_hosts`), `[${b.host}]:${b.port} ${b.hostPublicKey}\n`)
  writeFileSync(
    hostPath(lab, file),
    hostAlias(seed, b, dir, '') +
      hostAlias(mux, b, dir, `  ControlMaster auto\n  ControlPath ${dir}/cm-%C\n  ControlPersist 60\n`)
  )
  return {
    seed,
    mux,
    restore: () => {
      rmSync(hostPath(lab, file), { force: true })
      rmSync(hostPath(lab, dir), { recursive: true, force: true })
    }
  }
}

/** One ssh_config Host block for builder `b`, whose key and known_hosts are in `dir`. */
export function hostAlias(name: string, b: LabBuilder, dir: string, extra: string): string {
  return (
    `Host ${name}\n  HostName ${b.host}\n  Port ${b.port}\n  User ${b.user}\n  IdentityFile ${dir}/key\n` +
    `  IdentitiesOnly yes\n  UserKnownHostsFile ${dir}/known_hosts\n  StrictHostKeyChecking yes\n  BatchMode yes\n` +
    extra
  )
}

/** The lab's client key, which every builder accepts. */
export function readKey(lab: Lab): string {
  return readFileSync(lab.clientKey, 'utf8')
}

/** The nix command line every benchmark starts with (Nix 2.8 needs nix-command enabled). */
export const NIX = ['nix', '--extra-experimental-features', 'nix-command']

/**
 * A plain `nix build` as the runner user, the seed's way: `--max-jobs 0` and a builders line naming root's `alias`
 * with `maxJobs`. Returns its time in ms; throws when it fails. `wrap` is a command of the host's around it (e.g.
 * `/usr/bin/time`).
 */
export async function seedBuild(
  lab: Lab,
  b: LabBuilder,
  alias: string,
  expr: Expression,
  maxJobs: number,
  wrap: string[] = []
): Promise<number> {
  const started = performance.now()
  const build = [
    ...NIX,
    'build',
    '--no-link',
    '--max-jobs',
    '0',
    '--builders',
    `ssh-ng://${b.user}@${alias} ${lab.localSystem} - ${maxJobs} 1 - - -`,
    ...expr.args,
    ...expr.attributes
  ]
  const result = await runOnHost([...wrap, ...runnerArgv(lab, 'runner', build)], {
    HOME: `/home/${lab.runnerUser}`
  })
  const ms = performance.now() - started
  if (result.code !== 0) throw new Error(`plain nix build through ${alias} failed: ${result.stderr}`)
  return ms
}

/**
 * Runs `measure` until it succeeds, at most `tries` times. Each failure is printed and kept under `name` in
 * `failures`: a run the lab disturbed (a test restarting the runner's daemon) or an action that fails now and then
 * is a finding, not a reason to lose the other figures. Only successful runs are timed.
 */
export async function retried<T>(
  name: string,
  measure: () => Promise<T>,
  failures: Map<string, string[]>,
  tries = 3
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await measure()
    } catch (error) {
      const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? ''
      failures.set(name, [...(failures.get(name) ?? []), reason])
      process.stderr.write(`${name} failed (attempt ${attempt}/${tries}): ${reason}\n`)
      if (attempt >= tries) throw error
    }
  }
}

/** Prints the failures that `retried` kept, if any. */
export function printFailures(failures: Map<string, string[]>): void {
  for (const [name, reasons] of failures) {
    console.log(`  ${name}: ${reasons.length} failed attempt(s), not timed:`)
    for (const reason of reasons) console.log(`    - ${reason.slice(0, 600)}`)
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}
