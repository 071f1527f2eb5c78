import { describe, expect, it } from 'vitest'
import {
  builder,
  builderInputs,
  freshDerivation,
  hostPath,
  inStore,
  type Lab,
  loadLab,
  reportOf,
  runMain,
  runPost,
  type StepResult,
  visibleLog
} from './harness.js'
import { watchFiles, watchMasters } from './setup.js'

const lab: Lab = loadLab()
const a = builder(lab, 'a')

/** lab.json's `noNixUser`: its SSH sessions get `PATH=/nonexistent`, so no Nix program is on it. */
const NO_NIX_USER = 'nixnopath'
/** Where the lab builders' Nix programs are: Debian's nix-bin on the host's Nix and on the 2.26/2.34 rootfs alike. */
const NIX_BIN = '/usr/bin'

interface Report {
  strategy?: string
  derivations: { name: string; machine: string; status: string; proof?: { log: boolean; store?: boolean } }[]
  builders: { storeUri: string }[]
  outPaths: string[]
}

function noNixInputs(strategy: 'hook' | 'remote-store'): Record<string, string> {
  return { ...builderInputs(lab, 'a'), user: NO_NIX_USER, strategy, 'remote-program': NIX_BIN }
}

/** main, then post: post must succeed, the runner must be as before, and no SSH master may outlive the step. */
async function offloadAndUndo(inputs: Record<string, string>): Promise<StepResult> {
  const filesKept = watchFiles(lab)
  const noNewMasters = await watchMasters(lab)
  const main = await runMain(lab, inputs)
  const post = await runPost(lab, main)
  expect(post.code, post.stdout).toBe(0)
  filesKept()
  await noNewMasters()
  return main
}

describe('remote-program: a builder user whose non-interactive PATH has no Nix', () => {
  it.each(['hook', 'remote-store'] as const)(
    'strategy %s builds a fresh derivation there, the ledger naming the store URI with its remote-program',
    async strategy => {
      const drv = freshDerivation(lab)
      const main = await offloadAndUndo({ ...noNixInputs(strategy), args: drv.args, installables: 'drv' })
      const log = visibleLog(main)
      expect(main.code, log).toBe(0)
      expect(main.outputs).toMatchObject({ confirmed: 'true', 'remote-builds': '1', 'local-builds': '0' })
      const report = reportOf<Report>(lab, main)
      const storeUri = report.builders[0]?.storeUri ?? ''
      // ssh-ng (the default protocol) runs nix-daemon.
      expect(storeUri).toMatch(
        new RegExp(`^ssh-ng://${NO_NIX_USER}@nix-offload-[0-9a-f]+-1\\?remote-program=${NIX_BIN}/nix-daemon$`)
      )
      expect(report.derivations).toHaveLength(1)
      expect(report.derivations[0]).toMatchObject({ name: drv.name, machine: storeUri, status: 'built' })
      if (strategy === 'remote-store') {
        expect(report.strategy).toBe('remote-store')
        expect(report.derivations[0]?.proof).toMatchObject({ log: true, store: true })
      }
      const [outPath = ''] = report.outPaths
      expect(inStore(a.storeDir, outPath)).toBe(true)
      expect(inStore(hostPath(lab, '/nix/store'), outPath)).toBe(true)
      expect(log).toContain(`${drv.name}> building ${drv.nonce}`)
      if (strategy === 'hook') expect(log).toContain(`on '${storeUri}'`)
    }
  )

  it('without remote-program, fails the preflight before any write, its first error naming the input', async () => {
    const filesKept = watchFiles(lab)
    const main = await runMain(lab, {
      ...builderInputs(lab, 'a'),
      user: NO_NIX_USER,
      installables: 'drv'
    })
    expect(main.code).toBe(1)
    const error = visibleLog(main)
      .split('\n')
      .find(line => line.startsWith('::error'))
    expect(error).toContain(`nix-daemon is not on the non-interactive PATH of ${NO_NIX_USER}`)
    expect(error).toContain('`remote-program: /nix/var/nix/profiles/default/bin`')
    const post = await runPost(lab, main)
    expect(post.code).toBe(0)
    filesKept()
  })

  it('with remote-program naming a directory without Nix, fails the preflight naming the input', async () => {
    const main = await runMain(lab, {
      ...noNixInputs('hook'),
      'remote-program': '/opt/no-nix/bin',
      installables: 'drv'
    })
    expect(main.code).toBe(1)
    const error = visibleLog(main)
      .split('\n')
      .find(line => line.startsWith('::error'))
    expect(error).toMatch(
      /^::error[^:]*::Input 'remote-program': builder .* has no executable \/opt\/no-nix\/bin\/nix-daemon/
    )
    expect((await runPost(lab, main)).code).toBe(0)
  })
})
