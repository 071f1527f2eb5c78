import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { basename, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  builder,
  builderInputs,
  chownTree,
  freshDerivation,
  hostPath,
  inStore,
  type Lab,
  loadLab,
  reportOf,
  visibleLog,
  firstError,
  mainThenPost
} from './harness.js'

const lab: Lab = loadLab()
const a = builder(lab, 'a')

interface Report {
  strategy?: string
  outputsOnBuilder?: boolean
  derivations: {
    drvPath: string
    name: string
    machine: string
    proof?: { log: boolean; store?: boolean; problem?: string }
  }[]
  outPaths: string[]
}

/**
 * A flake of the runner's with no inputs (the lab has no network, so no nixpkgs) whose one package is a derivation no
 * store holds yet (a nonce), as a `path:` reference so no git is needed: the installable and the derivation's name.
 */
function freshFlake(): { installable: string; name: string } {
  const nonce = randomBytes(6).toString('hex')
  const name = `nix-offload-test-${nonce}`
  const dir = mkdtempSync(hostPath(lab, '/tmp/nix-offload-flake-')).slice(lab.runner.root.length)
  const system = lab.localSystem
  writeFileSync(
    hostPath(lab, join(dir, 'flake.nix')),
    `{
  outputs = { self }: {
    packages.${system}.default = builtins.derivation {
      name = "${name}";
      system = "${system}";
      builder = "/bin/sh";
      args = [ "-c" "echo building ${nonce}; echo ${nonce} > $out" ];
    };
  };
}
`
  )
  chownTree(hostPath(lab, dir), lab.runnerUser)
  return { installable: `path:${dir}#packages.${system}.default`, name }
}

describe('evaluate: builder', () => {
  it('sends a local flake to the builder, whose own nix evaluates and builds it: confirmed, proven from its store, the output copied back, the derivation never on the runner', async () => {
    const flake = freshFlake()
    const main = await mainThenPost(lab, {
      ...builderInputs(lab, 'a'),
      strategy: 'remote-store',
      evaluate: 'builder',
      installables: flake.installable
    })
    expect(main.code, visibleLog(main)).toBe(0)
    expect(visibleLog(main)).toMatch(/Strategy: remote-store: 'evaluate: builder'/)
    expect(main.outputs).toMatchObject({ confirmed: 'true', 'remote-builds': '1', 'local-builds': '0' })
    const report = reportOf<Report>(lab, main)
    expect(report.strategy).toBe('remote-store')
    expect(report.derivations).toHaveLength(1)
    const [derivation] = report.derivations
    // store: true is the builder's store saying `ultimate` of the output, its deriver this derivation.
    expect(derivation).toMatchObject({ name: flake.name, proof: { log: true, store: true } })
    expect(derivation?.machine).toMatch(/^ssh-ng:\/\//)
    // Evaluated there: the derivation is in the builder's store only.
    expect(inStore(a.storeDir, derivation?.drvPath ?? '')).toBe(true)
    expect(inStore(hostPath(lab, '/nix/store'), derivation?.drvPath ?? '')).toBe(false)
    const [outPath = ''] = report.outPaths
    expect(basename(outPath)).toMatch(new RegExp(`-${flake.name}$`))
    expect(main.outputs['out-paths']).toBe(outPath)
    expect(inStore(a.storeDir, outPath)).toBe(true)
    expect(inStore(hostPath(lab, '/nix/store'), outPath)).toBe(true)
    // The builder's log came back, each line under the derivation's name.
    expect(visibleLog(main)).toContain(`${flake.name}> building`)
  })

  it('with copy-back false leaves the output on the builder', async () => {
    const flake = freshFlake()
    const main = await mainThenPost(lab, {
      ...builderInputs(lab, 'a'),
      strategy: 'remote-store',
      evaluate: 'builder',
      'copy-back': 'false',
      installables: flake.installable
    })
    expect(main.code, visibleLog(main)).toBe(0)
    const report = reportOf<Report>(lab, main)
    expect(report.outputsOnBuilder).toBe(true)
    const [outPath = ''] = report.outPaths
    expect(inStore(a.storeDir, outPath)).toBe(true)
    expect(inStore(hostPath(lab, '/nix/store'), outPath)).toBe(false)
  })

  it('refuses a key that runs only nix-daemon before any change, naming the input and the fix', async () => {
    const flake = freshFlake()
    const main = await mainThenPost(lab, {
      ...builderInputs(lab, 'a'),
      strategy: 'remote-store',
      'ssh-private-key': readFileSync(lab.daemonOnlyKey, 'utf8'),
      evaluate: 'builder',
      installables: flake.installable
    })
    expect(main.code).toBe(1)
    expect(firstError(main)).toMatch(/'evaluate: builder'/)
    expect(firstError(main)).toMatch(/needs a shell there/)
    expect(firstError(main)).toMatch(/nix-daemon/)
    expect(firstError(main)).toMatch(/'evaluate: runner'/)
    expect(main.state.journal ?? '{"undo":[]}').toMatch(/"undo":\[\]/)
  })

  it('refuses a -f installable before any change, naming evaluate: runner as the way', async () => {
    const drv = freshDerivation(lab)
    const main = await mainThenPost(lab, {
      ...builderInputs(lab, 'a'),
      strategy: 'remote-store',
      evaluate: 'builder',
      args: drv.args,
      installables: 'drv'
    })
    expect(main.code).toBe(1)
    expect(firstError(main)).toMatch(/Input 'evaluate': 'builder' sends a flake/)
    expect(firstError(main)).toMatch(/-f/)
    expect(firstError(main)).toMatch(/'evaluate: runner'/)
    expect(main.state.journal ?? '{"undo":[]}').toMatch(/"undo":\[\]/)
  })
})
