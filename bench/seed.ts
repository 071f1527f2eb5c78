/** What the offload benchmarks share: fresh derivations, and the seed recipe's hand-made ssh config for root. */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { chownTree, type Lab, type LabBuilder, runCommandAs } from '../__tests__/lab/harness.js'

export const SEED_ALIAS = 'nix-offload-bench-seed'
/** The same alias with a shared connection (ControlMaster), for the floors benchmark. */
export const MUX_ALIAS = 'nix-offload-bench-mux'
const ROOT_SSH = '/root/.ssh'
const CONTROL_DIR = '/root/.ssh/nix-offload-bench-cm'

/** A file of `count` derivations that no store holds yet, readable by the runner user. */
export function expression(lab: Lab, count: number): { args: string[]; attributes: string[] } {
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

/**
 * The seed recipe by hand: a Host alias for root without multiplexing, the key, a pinned known_hosts; plus the same
 * alias with ControlMaster (MUX_ALIAS). Returns the function that puts root's ~/.ssh back.
 */
export function seedConfig(lab: Lab, a: LabBuilder): () => void {
  const config = `${ROOT_SSH}/config`
  const original = existsSync(config) ? readFileSync(config) : undefined
  const hadDir = existsSync(ROOT_SSH)
  mkdirSync(CONTROL_DIR, { recursive: true, mode: 0o700 })
  writeFileSync(`${ROOT_SSH}/bench_known_hosts`, `[${a.host}]:${a.port} ${a.hostPublicKey}\n`)
  const alias = (name: string, extra: string): string =>
    `Host ${name}\n  HostName ${a.host}\n  Port ${a.port}\n  User ${a.user}\n  IdentityFile ${lab.clientKey}\n` +
    `  UserKnownHostsFile ${ROOT_SSH}/bench_known_hosts\n  StrictHostKeyChecking yes\n  BatchMode yes\n${extra}`
  writeFileSync(
    config,
    alias(SEED_ALIAS, '') +
      alias(MUX_ALIAS, `  ControlMaster auto\n  ControlPath ${CONTROL_DIR}/%C\n  ControlPersist 60\n`) +
      (original === undefined ? '' : original.toString()),
    { mode: 0o600 }
  )
  return () => {
    rmSync(`${ROOT_SSH}/bench_known_hosts`, { force: true })
    rmSync(CONTROL_DIR, { recursive: true, force: true })
    if (original === undefined) rmSync(config, { force: true })
    else writeFileSync(config, original)
    if (!hadDir) rmSync(ROOT_SSH, { recursive: true, force: true })
  }
}

/**
 * A plain `nix build` of `count` fresh derivations as the runner user, the seed's way: `--max-jobs 0` and a builders
 * line naming `alias` (an alias of seedConfig's) with `maxJobs`. Returns its time in ms; throws when it fails.
 */
export async function seedBuild(
  lab: Lab,
  a: LabBuilder,
  alias: string,
  count: number,
  maxJobs: number
): Promise<number> {
  const { args, attributes } = expression(lab, count)
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
    `ssh-ng://${a.user}@${alias} ${lab.localSystem} - ${maxJobs} 1 - - -`,
    ...args,
    ...attributes
  ])
  const ms = performance.now() - started
  if (result.code !== 0) throw new Error(`plain nix build through ${alias} failed: ${result.stderr}`)
  return ms
}

export function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}
