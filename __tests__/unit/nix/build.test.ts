import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildArguments, parseOutPaths } from '../../../src/nix/build.js'
import { failedDerivations } from '../../../src/nix/ledger.js'
import { parseNixLine, stripAnsi } from '../../../src/nix/nix-log.js'
import { NIX_FEATURES } from '../../../src/nix/nix-cli.js'
import { settingsWith } from '../support/settings.js'

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures')
const FAILING_DRV = '/nix/store/zsdq1lk5wfch6jy1k3j523lagya65j9y-lab-check-110815869.drv'

const settings = settingsWith

/** Level-0 messages of a captured log, colours stripped, as src/build.ts collects them. */
function errorMessages(name: string): string[] {
  return readFileSync(join(FIXTURES, name), 'utf8')
    .split('\n')
    .map(parseNixLine)
    .flatMap(event => (event?.action === 'msg' && event.level === 0 ? [stripAnsi(event.msg)] : []))
}

describe('buildArguments', () => {
  const BUILD = [...NIX_FEATURES, 'build']
  const PROOF = ['--log-format', 'internal-json', '--json']

  it('puts args first and its own options after them, then installables', () => {
    expect(buildArguments(settings({ args: ['-L'], installables: ['nixpkgs#hello', '.#b'] }))).toEqual([
      ...BUILD,
      '-L',
      ...PROOF,
      '--max-jobs',
      '0',
      '--no-link',
      'nixpkgs#hello',
      '.#b'
    ])
  })

  it('passes local-jobs and --rebuild', () => {
    expect(buildArguments(settings({ localJobs: 4, rebuild: true }))).toEqual([
      ...BUILD,
      ...PROOF,
      '--max-jobs',
      '4',
      '--rebuild',
      '--no-link',
      'nixpkgs#hello'
    ])
  })

  it('keeps the proof when args try to change the log format or local jobs (a later option wins)', () => {
    const args = buildArguments(settings({ args: ['--log-format', 'bar', '--max-jobs', '8'] }))
    expect(args.lastIndexOf('--log-format')).toBeGreaterThan(args.indexOf('bar'))
    expect(args[args.lastIndexOf('--log-format') + 1]).toBe('internal-json')
    expect(args[args.lastIndexOf('--max-jobs') + 1]).toBe('0')
  })

  it.each([[['-o', 'out']], [['--out-link', 'out']], [['--out-link=out']], [['--no-link']]])(
    'leaves the out link to the user when args say %j',
    args => {
      expect(buildArguments(settings({ args }))).toEqual([
        ...BUILD,
        ...args,
        ...PROOF,
        '--max-jobs',
        '0',
        'nixpkgs#hello'
      ])
    }
  )

  it('works with args only, as for --expr builds', () => {
    expect(buildArguments(settings({ installables: [], args: ['--impure', '--expr', 'x'] }))).toEqual([
      ...BUILD,
      '--impure',
      '--expr',
      'x',
      ...PROOF,
      '--max-jobs',
      '0',
      '--no-link'
    ])
  })
})

describe('failedDerivations', () => {
  it('finds the derivation in the failing remote build of the captured Nix 2.8 log', () => {
    const errors = errorMessages('remote-build-fails-nix-2.8.log')
    expect(errors).toHaveLength(2)
    for (const message of errors) expect([...new Set(failedDerivations(message))]).toEqual([FAILING_DRV])
  })

  it('finds "builder for … failed with exit code N"', () => {
    expect(failedDerivations(`error: builder for '${FAILING_DRV}' failed with exit code 1;`)).toEqual([
      FAILING_DRV
    ])
  })

  it('finds "build of … on … failed"', () => {
    expect(failedDerivations(`error: build of '${FAILING_DRV}' on 'ssh://root@b' failed: timeout`)).toEqual([
      FAILING_DRV
    ])
  })

  it('finds several failures in one message', () => {
    const other = '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b.drv'
    expect(
      failedDerivations(
        `builder for '${FAILING_DRV}' failed with exit code 2\nbuilder for '${other}' failed with exit code 1`
      )
    ).toEqual([FAILING_DRV, other])
  })

  it('finds the Nix 2.30+ form "Cannot build \'…\'. Reason: builder failed"', () => {
    expect(
      failedDerivations(
        `error: Cannot build '${FAILING_DRV}'.\n       Reason: builder failed with exit code 1.`
      )
    ).toEqual([FAILING_DRV])
  })

  it('finds none in messages about machines rather than derivations', () => {
    for (const name of ['host-key-mismatch-nix-2.8.log', 'untrusted-user-nix-2.8.log']) {
      for (const message of errorMessages(name)) expect(failedDerivations(message), message).toEqual([])
    }
  })
})

describe('parseOutPaths', () => {
  it('reads the out path of the captured nix build --json output', () => {
    const stdout = readFileSync(join(FIXTURES, 'remote-build-nix-2.8.json'), 'utf8')
    expect(parseOutPaths(stdout)).toEqual([
      '/nix/store/qdamdrwp07yldkzahs9znd4awiq282x2-lab-check-2154016889'
    ])
  })

  it('reads every output of every installable, in order', () => {
    const stdout = JSON.stringify([
      { drvPath: '/nix/store/a.drv', outputs: { out: '/nix/store/a', dev: '/nix/store/a-dev' } },
      { drvPath: '/nix/store/b.drv', outputs: { out: '/nix/store/b' } }
    ])
    expect(parseOutPaths(stdout)).toEqual(['/nix/store/a', '/nix/store/a-dev', '/nix/store/b'])
  })

  it('skips entries without string outputs', () => {
    const stdout = JSON.stringify([
      null,
      3,
      { drvPath: 'x' },
      { outputs: null },
      { outputs: { out: 5, bin: '/nix/store/c' } }
    ])
    expect(parseOutPaths(stdout)).toEqual(['/nix/store/c'])
  })

  it('returns nothing for empty, non-JSON or non-array output', () => {
    for (const stdout of ['', '  \n', 'not json', '{"outputs":{"out":"/nix/store/a"}}']) {
      expect(parseOutPaths(stdout)).toEqual([])
    }
  })
})
