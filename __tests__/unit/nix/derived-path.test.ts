import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { derivedPathArgs, parseDryRun, type SelectedOutputs } from '../../../src/nix/strategy.js'
import { NIX_FEATURES, type NixRelease } from '../../../src/nix/nix-cli.js'

const A = '/nix/store/2jqwpfx6gwjq5azsw311403ijaca7wlc-a.drv'
const B = '/nix/store/1nmzkgwfp8n73fz12jmv80yxj7hxv7kn-b-1.0.drv'
const SELECTED: SelectedOutputs[] = [
  { drvPath: A, outputs: ['out'] },
  { drvPath: B, outputs: ['dev', 'out'] }
]
const HAS_NIX = spawnSync('nix', ['--version']).status === 0
const nix = (version: string): NixRelease => ({ implementation: 'nix', version })

describe('parseDryRun', () => {
  it('reads each derivation with the outputs selected, as 2.8 and 2.34 print them', () => {
    const stdout = JSON.stringify([
      { drvPath: A, outputs: { out: '/nix/store/f2hdjnmvfaqcllsj812xl2dn51zf363w-a' } },
      { drvPath: B, outputs: { dev: null, out: null } }
    ])
    expect(parseDryRun(stdout)).toEqual(SELECTED)
  })

  it('leaves out what is no derivation in the store, or names an output Nix could not', () => {
    const stdout = JSON.stringify([
      { path: '/nix/store/f2hdjnmvfaqcllsj812xl2dn51zf363w-a' },
      { drvPath: '/tmp/x.drv', outputs: { out: null } },
      { drvPath: '/nix/store/f2hdjnmvfaqcllsj812xl2dn51zf363w-a', outputs: { out: null } },
      { drvPath: A, outputs: { 'out"; x = "': null } },
      { drvPath: A, outputs: { '${x}': null } },
      { drvPath: A, outputs: {} },
      { drvPath: A, outputs: { out: null } }
    ])
    expect(parseDryRun(stdout)).toEqual([{ drvPath: A, outputs: ['out'] }])
  })

  it('says undefined for what is not a list', () => {
    for (const stdout of ['', 'not json', '{}']) expect(parseDryRun(stdout)).toBeUndefined()
  })
})

describe('derivedPathArgs', () => {
  it('names `<drv>^<outputs>` from Nix 2.13, and in Lix', () => {
    const caret = [`${A}^out`, `${B}^dev,out`]
    for (const release of [
      nix('2.13.0'),
      nix('2.34.8'),
      { implementation: 'lix', version: '2.93.0' } as const
    ]) {
      expect(derivedPathArgs(release, SELECTED)).toEqual(caret)
    }
  })

  it('names an expression of the derivations before 2.13, one installable per entry', () => {
    for (const release of [nix('2.8.0'), nix('2.12.1'), nix('')]) {
      const args = derivedPathArgs(release, SELECTED)
      expect(args[0]).toBe('--expr')
      expect(args.slice(2)).toEqual(['0', '1'])
      expect(args[1]).toContain(`drvPath = "${B}"; outputName = "dev"; outputs = [ "dev" ];`)
      expect(args[1]).toContain('name = "b-1.0";')
    }
  })

  describe.skipIf(!HAS_NIX)("with this machine's Nix, in a store of the test's own", () => {
    const dir = mkdtempSync(join(tmpdir(), 'nix-offload-derived-'))
    afterAll(() => rmSync(dir, { recursive: true, force: true }))

    it('selects exactly the outputs without evaluating anything else (`nix build --dry-run` of the expression)', () => {
      const version = execFileSync('nix', ['--version'], { encoding: 'utf8' })
      const release = nix(/(\d+\.\d+(?:\.\d+)?)/.exec(version)?.[1] ?? '')
      const store = join(dir, 'store')
      const run = (args: string[]): string =>
        execFileSync('nix', [...NIX_FEATURES, '--store', store, ...args], { encoding: 'utf8', stdio: 'pipe' })
      const expr =
        'let d = derivation { name = "d"; system = "x"; builder = "/bin/sh"; outputs = [ "out" "dev" "man" ]; }; ' +
        'in { inherit d; }'
      const selected = parseDryRun(run(['build', '--dry-run', '--json', '--expr', expr, 'd.dev', 'd.man']))
      expect(selected?.map(entry => entry.outputs)).toEqual([['dev'], ['man']])
      const again = parseDryRun(
        run(['build', '--dry-run', '--json', ...derivedPathArgs(release, selected ?? [])])
      )
      expect(again).toEqual(selected)
      // A fresh store's database, and a machine busy with other work, can take seconds.
    }, 60_000)
  })
})
