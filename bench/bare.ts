/**
 * The bare floor of the remote-store strategy: the two commands the action runs, alone, as the runner user, with an
 * ssh config made once before the runs and handed to Nix through NIX_SSHOPTS (docs/nix.md, "Building in the
 * builder's store"):
 *
 *   nix build --store ssh-ng://ALIAS --eval-store auto -j N --no-link --json …
 *   nix copy --from ssh-ng://ALIAS --no-check-sigs OUT…
 *
 * and, for a runner on Nix 2.25 or later, the one command the action runs there instead (bareCopyBuild):
 *
 *   nix copy --from ssh-ng://ALIAS --eval-store auto --no-check-sigs -j N --out-link DIR/out …
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { chownTree, hostPath, type Lab, type LabBuilder, runCommandAs } from '../__tests__/lab/harness.js'
import { type Expression, hostAlias, NIX, nonce, readKey } from './seed.js'

/** The runner user's ssh config for the bare commands: `plain` opens a connection per command, `mux` shares one. */
export interface BareSsh {
  plain: string
  mux: string
  /** NIX_SSHOPTS for both. */
  sshopts: string
  /** Closes `mux`'s master, so that the next run pays its handshake as the first run did. */
  closeMaster: () => Promise<void>
  restore: () => void
}

export function bareConfig(lab: Lab, b: LabBuilder): BareSsh {
  const dir = `/tmp/nix-offload-bench-ssh-${nonce()}`
  const [plain, mux] = ['bench-bare', 'bench-bare-mux']
  mkdirSync(hostPath(lab, dir), { mode: 0o700 })
  writeFileSync(hostPath(lab, `${dir}/key`), readKey(lab), { mode: 0o600 })
  writeFileSync(hostPath(lab, `${dir}/known_hosts`), `[${b.host}]:${b.port} ${b.hostPublicKey}\n`)
  writeFileSync(
    hostPath(lab, `${dir}/config`),
    hostAlias(plain, b, dir, '') +
      hostAlias(mux, b, dir, `  ControlMaster auto\n  ControlPath ${dir}/cm-%C\n  ControlPersist 60\n`)
  )
  chownTree(hostPath(lab, dir), lab.runnerUser)
  const sshopts = `-F ${dir}/config`
  return {
    plain,
    mux,
    sshopts,
    closeMaster: async () => {
      await runCommandAs(lab, 'runner', ['ssh', '-F', `${dir}/config`, '-O', 'exit', mux])
    },
    restore: () => rmSync(hostPath(lab, dir), { recursive: true, force: true })
  }
}

export interface BareTimes {
  /** Both commands, ms. */
  ms: number
  buildMs: number
  copyMs: number
  outPaths: string[]
}

/** The two commands through `alias` of `ssh`; throws when either fails. */
export async function bareStoreBuild(
  lab: Lab,
  ssh: BareSsh,
  alias: string,
  expr: Expression,
  maxJobs: number
): Promise<BareTimes> {
  const env = { NIX_SSHOPTS: ssh.sshopts }
  const store = `ssh-ng://${alias}`
  const started = performance.now()
  const build = await runCommandAs(
    lab,
    'runner',
    [
      ...NIX,
      'build',
      '--store',
      store,
      '--eval-store',
      'auto',
      '-j',
      String(maxJobs),
      '--no-link',
      '--json',
      ...expr.args,
      ...expr.attributes
    ],
    env
  )
  const built = performance.now()
  if (build.code !== 0) throw new Error(`nix build --store ${store} failed: ${build.stderr}`)
  const outPaths = (JSON.parse(build.stdout) as { outputs: Record<string, string> }[]).flatMap(result =>
    Object.values(result.outputs)
  )
  const copy = await runCommandAs(
    lab,
    'runner',
    [...NIX, 'copy', '--from', store, '--no-check-sigs', ...outPaths],
    env
  )
  const copied = performance.now()
  if (copy.code !== 0) throw new Error(`nix copy --from ${store} failed: ${copy.stderr}`)
  return { ms: copied - started, buildMs: built - started, copyMs: copied - built, outPaths }
}

/** The one-session form (runner Nix 2.25+): `nix copy --from` builds in the builder's store and brings the outputs back. */
export async function bareCopyBuild(
  lab: Lab,
  ssh: BareSsh,
  alias: string,
  expr: Expression,
  maxJobs: number
): Promise<number> {
  const links = `/tmp/nix-offload-bench-links-${nonce()}`
  mkdirSync(hostPath(lab, links), { mode: 0o700 })
  chownTree(hostPath(lab, links), lab.runnerUser)
  const store = `ssh-ng://${alias}`
  try {
    const started = performance.now()
    const copy = await runCommandAs(
      lab,
      'runner',
      [
        ...NIX,
        'copy',
        '--from',
        store,
        '--eval-store',
        'auto',
        '--no-check-sigs',
        '-j',
        String(maxJobs),
        '--out-link',
        `${links}/out`,
        ...expr.args,
        ...expr.attributes
      ],
      { NIX_SSHOPTS: ssh.sshopts }
    )
    const ms = performance.now() - started
    if (copy.code !== 0) throw new Error(`nix copy --from ${store} --eval-store auto failed: ${copy.stderr}`)
    return ms
  } finally {
    rmSync(hostPath(lab, links), { recursive: true, force: true })
  }
}
