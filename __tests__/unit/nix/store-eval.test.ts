import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { NIX_FEATURES, type NixRelease } from '../../../src/nix/nix-cli.js'
import { copyArguments, storeBuildArguments } from '../../../src/nix/store-build.js'
import { evaluationArguments, installableNeeds } from '../../../src/nix/strategy.js'
import { settingsWith } from '../support/settings.js'

const A = '/nix/store/2jqwpfx6gwjq5azsw311403ijaca7wlc-a.drv'
const B = '/nix/store/1nmzkgwfp8n73fz12jmv80yxj7hxv7kn-b.drv'
const STORE = 'ssh-ng://nixbuilder@b1'
const ARGS = ['--impure', '-L', '-o', 'result', '--override-input', 'nixpkgs', 'path:/n', '--keep-going']
const NIX_28: NixRelease = { implementation: 'nix', version: '2.8.0' }
const NIX_34: NixRelease = { implementation: 'nix', version: '2.34.8' }

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/**
 * A `nix` on PATH that writes each command line it is given (one JSON list a line) and prints `dryRun` for
 * `nix build --dry-run`, `shown` for anything else.
 */
function standInNix(dryRun: unknown, shown: unknown): { env: NodeJS.ProcessEnv; calls: () => string[][] } {
  const dir = mkdtempSync(join(tmpdir(), 'nix-offload-store-eval-'))
  dirs.push(dir)
  writeFileSync(join(dir, 'dry'), JSON.stringify(dryRun))
  writeFileSync(join(dir, 'shown'), JSON.stringify(shown))
  writeFileSync(
    join(dir, 'nix'),
    '#!/bin/sh\n' +
      `node -e 'console.log(JSON.stringify(process.argv.slice(1)))' -- "$@" >> ${dir}/calls\n` +
      `case " $* " in *" --dry-run "*) cat ${dir}/dry ;; *) cat ${dir}/shown ;; esac\n`
  )
  chmodSync(join(dir, 'nix'), 0o755)
  return {
    env: { PATH: `${dir}:${process.env.PATH ?? ''}` },
    calls: () =>
      readFileSync(join(dir, 'calls'), 'utf8')
        .trim()
        .split('\n')
        .map(line => {
          const parsed: unknown = JSON.parse(line)
          return Array.isArray(parsed) ? parsed.map(String) : []
        })
  }
}

const DRY_RUN = [
  { drvPath: A, outputs: { out: '/nix/store/f2hdjnmvfaqcllsj812xl2dn51zf363w-a' } },
  { drvPath: B, outputs: { dev: null, out: null } }
]
const SHOWN = {
  [A]: { system: 'x86_64-linux', env: {} },
  [B]: { system: 'aarch64-linux', env: { requiredSystemFeatures: 'kvm' } }
}

describe('the evaluation for remote-store, once', () => {
  it('evaluates with only the evaluation options of args, and builds nothing', () => {
    expect(evaluationArguments({ args: ARGS, installables: ['.#a', '.#b'] })).toEqual([
      ...NIX_FEATURES,
      'build',
      '--impure',
      '-L',
      '--override-input',
      'nixpkgs',
      'path:/n',
      '--dry-run',
      '--json',
      '--max-jobs',
      '0',
      '--builders',
      '',
      '.#a',
      '.#b'
    ])
  })

  it('learns each derivation, the outputs selected and its needs, then reads the derivations without evaluating', async () => {
    const nix = standInNix(DRY_RUN, SHOWN)
    const settings = settingsWith({ args: ARGS, installables: ['.#a', '.#b.dev'] })
    const lookup = await installableNeeds(NIX_34, settings, nix.env)
    expect(lookup).toEqual({
      needs: [
        { installable: '.#a', drvPath: A, outputs: ['out'], system: 'x86_64-linux', features: [] },
        {
          installable: '.#b.dev',
          drvPath: B,
          outputs: ['dev', 'out'],
          system: 'aarch64-linux',
          features: ['kvm']
        }
      ]
    })
    const [evaluation, show] = nix.calls()
    expect(evaluation).toEqual(evaluationArguments(settings))
    expect(show).toEqual([...NIX_FEATURES, 'derivation', 'show', `${A}^out`, `${B}^dev,out`])
  })

  it('reads them on 2.8 through an expression of the derivations, and names them by path when an installable selects several', async () => {
    const nix = standInNix(DRY_RUN, SHOWN)
    const lookup = await installableNeeds(NIX_28, settingsWith({ installables: ['.#both'] }), nix.env)
    expect(lookup.needs?.map(need => need.installable)).toEqual([A, B])
    const show = nix.calls()[1] ?? []
    expect(show.slice(0, 4)).toEqual([...NIX_FEATURES, 'show-derivation', '--expr'])
    expect(show.slice(5)).toEqual(['0', '1'])
  })

  it('says why when the evaluation names no derivation, or one it cannot read', async () => {
    expect((await installableNeeds(NIX_34, settingsWith(), standInNix([], SHOWN).env)).problem).toBe(
      'they name no derivation to build'
    )
    expect((await installableNeeds(NIX_34, settingsWith(), standInNix(DRY_RUN, {}).env)).problem).toBe(
      `their derivation ${A} could not be read`
    )
  })
})

describe('the build in a builder store, from the derivations', () => {
  const session = { storeUri: STORE, label: 'nixbuilder@b1:22', targets: [`${A}^out`] }

  it('runs `nix build --store` with only the build and result options of args', () => {
    expect(storeBuildArguments(settingsWith({ args: ARGS }), session, 3)).toEqual([
      ...NIX_FEATURES,
      'build',
      '--store',
      STORE,
      '--eval-store',
      'auto',
      '-L',
      '-o',
      'result',
      '--keep-going',
      '--log-format',
      'internal-json',
      '--json',
      '--max-jobs',
      '3',
      `${A}^out`
    ])
  })

  it("runs `nix copy --from` with none of `nix build`'s result options, and its own link", () => {
    expect(copyArguments(settingsWith({ args: ARGS }), session, 3, '/w/out-x/out')).toEqual([
      ...NIX_FEATURES,
      'copy',
      '--from',
      STORE,
      '--eval-store',
      'auto',
      '--no-check-sigs',
      '-L',
      '--keep-going',
      '--log-format',
      'internal-json',
      '--max-jobs',
      '3',
      '--out-link',
      '/w/out-x/out',
      `${A}^out`
    ])
  })
})
