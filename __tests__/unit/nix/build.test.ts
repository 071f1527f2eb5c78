import * as core from '@actions/core'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { buildArguments, parseOutPaths, runNixBuild } from '../../../src/nix/build.js'
import { failedDerivations } from '../../../src/nix/ledger.js'
import { NIX_FEATURES } from '../../../src/nix/nix-cli.js'
import { fixtureErrors, fixtureLines, readFixture } from '../support/fixtures.js'
import { settingsWith } from '../support/settings.js'

const FAILING_DRV = '/nix/store/zsdq1lk5wfch6jy1k3j523lagya65j9y-lab-check-110815869.drv'

const settings = settingsWith

vi.mock('@actions/core', async importOriginal => ({
  ...(await importOriginal<typeof import('@actions/core')>()),
  info: vi.fn()
}))

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
    const errors = fixtureErrors('remote-build-fails-nix-2.8.log')
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
      for (const message of fixtureErrors(name)) expect(failedDerivations(message), message).toEqual([])
    }
  })
})

describe('parseOutPaths', () => {
  it('reads the out path of the captured nix build --json output', () => {
    const stdout = readFixture('remote-build-nix-2.8.json')
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

describe('runNixBuild', () => {
  const REMOTE_34 = fixtureLines('remote-build-nix-2.34.log')
  /** The 2.34 log up to the remote build's start, and the rest. */
  const started = REMOTE_34.findIndex(line => line.includes('"type":105}') && line.includes("on 'ssh-ng://"))
  const dirs: string[] = []

  afterEach(() => {
    vi.useRealTimers()
    vi.mocked(core.info).mockClear()
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  })

  /**
   * A `nix` on PATH that prints the first part of the log, waits for the file `go` (when the test says), then prints
   * the rest.
   */
  function fakeNix(first: string[], rest: string[]): { env: NodeJS.ProcessEnv; go: () => void } {
    const dir = mkdtempSync(join(tmpdir(), 'nix-offload-fake-nix-'))
    dirs.push(dir)
    writeFileSync(join(dir, 'first.log'), first.join('\n') + '\n')
    writeFileSync(join(dir, 'rest.log'), rest.join('\n'))
    writeFileSync(
      join(dir, 'nix'),
      // It gives up when the test has removed its directory without saying go (a failed test).
      `#!/bin/sh\ncat '${dir}/first.log' >&2\n` +
        `while [ ! -e '${dir}/go' ]; do [ -d '${dir}' ] || exit 1; sleep 0.02; done\n` +
        `cat '${dir}/rest.log' >&2\necho '[]'\n`
    )
    chmodSync(join(dir, 'nix'), 0o755)
    return {
      env: { PATH: `${dir}:${process.env.PATH ?? ''}` },
      go: () => writeFileSync(join(dir, 'go'), '')
    }
  }

  const printed = (): string[] => vi.mocked(core.info).mock.calls.map(([line]) => line)

  async function until(seen: () => boolean): Promise<void> {
    while (!seen()) await new Promise(resolve => setTimeout(resolve, 10))
  }

  it('prints a progress line while a build runs past 15 s, and stops asking when it ends', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] })
    const nix = fakeNix(REMOTE_34.slice(0, started + 1), REMOTE_34.slice(started + 1))
    const running = runNixBuild(['build'], nix.env)
    await until(() => printed().some(line => line.startsWith('building ')))
    vi.advanceTimersByTime(14_000)
    expect(printed().filter(line => line.startsWith('progress:'))).toEqual([])
    vi.advanceTimersByTime(1_000)
    expect(printed().filter(line => line.startsWith('progress:'))).toEqual([
      'progress: 0/1 derivations built (labC: 1 running)'
    ])
    nix.go()
    const outcome = await running
    expect(outcome.exitCode).toBe(0)
    expect(outcome.builds.map(build => build.status)).toEqual(['built'])
    expect(vi.getTimerCount()).toBe(0)
    // The line came between the commands' stop and resume, like every other line of the build.
    expect(printed()[0]).toMatch(/^::stop-commands::[0-9a-f]{32}$/)
    expect(printed().at(-1)).toMatch(/^::[0-9a-f]{32}::$/)
  })

  it('prints none for a build that ends within 15 s', async () => {
    const nix = fakeNix(REMOTE_34, [])
    nix.go()
    const outcome = await runNixBuild(['build'], nix.env)
    expect(outcome.exitCode).toBe(0)
    expect(printed().some(line => line.startsWith('building '))).toBe(true)
    expect(printed().filter(line => line.startsWith('progress:'))).toEqual([])
  })
})
