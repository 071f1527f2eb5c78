import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest'
import { AnnotatedFailure, failStep, StepError } from '../../src/base/index.js'
import { admitBuilders, type PreflightOutcome, type PreflightResult } from '../../src/builders/index.js'
import { canary } from '../../src/canary/index.js'
import { InputError } from '../../src/inputs/errors.js'
import { type ConfiguredBuilder, label, SetupError, type Settings } from '../../src/inputs/index.js'
import type { BuildRecord } from '../../src/nix/index.js'
import { emptyOutcome } from '../../src/nix/store-build.js'
import { judgeBuild } from '../../src/offload-verdict.js'
import { makeReport } from '../../src/report/index.js'
import { makePlan } from '../../src/runner/index.js'
import { configuredWith } from './support/builders.js'
import { runnerFactsWith } from './support/runner.js'
import { builderWith, settingsWith } from './support/settings.js'

// The canary's history lives in the Actions cache, which a unit test has none of.
vi.mock('../../src/canary/history-cache.js', () => ({
  restoreHistory: vi.fn(() => Promise.resolve({ samples: [] })),
  saveHistory: vi.fn(() => Promise.resolve())
}))

let stdout: MockInstance<typeof process.stdout.write>
let temp: string

beforeEach(() => {
  // @actions/core writes its workflow commands to stdout: capture them to count, and keep the output quiet.
  stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true)
  temp = mkdtempSync(join(tmpdir(), 'nix-offload-errors-'))
  vi.stubEnv('RUNNER_TEMP', temp)
  writeFileSync(join(temp, 'output'), '')
  vi.stubEnv('GITHUB_OUTPUT', join(temp, 'output'))
})
afterEach(() => {
  stdout.mockRestore()
  vi.unstubAllEnvs()
  rmSync(temp, { recursive: true, force: true })
  // The failing exit code is what each test checks; it must not fail the test run itself.
  process.exitCode = undefined
})

/** The lines that GitHub reads as error annotations. */
function errorLines(): string[] {
  return stdout.mock.calls
    .flatMap(([chunk]) => String(chunk).split('\n'))
    .filter(line => line.trimStart().startsWith('::error'))
}

/** Runs `step` and fails as the entry points do, with whatever it threw. */
async function failing(step: () => unknown): Promise<void> {
  try {
    await step()
  } catch (error) {
    failStep(error)
    return
  }
  throw new Error('the step did not fail')
}

describe('failStep: one titled annotation per error, and exit code 1', () => {
  it.each([
    [
      'a bad input',
      new InputError('port', '"x" is not a whole number'),
      `::error title=nix-offload%3A input port::Input 'port': "x" is not a whole number`
    ],
    [
      'a runner that cannot serve',
      new SetupError('Nix is not installed on the runner.', 'runner'),
      '::error title=nix-offload%3A runner::Nix is not installed on the runner.'
    ],
    [
      'a failed build',
      new StepError('nix build failed (exit code 1): x', 'nix-offload: build failed'),
      '::error title=nix-offload%3A build failed::nix build failed (exit code 1): x'
    ],
    [
      'a bug',
      new TypeError("Cannot read properties of undefined (reading 'x')"),
      "::error title=nix-offload::Cannot read properties of undefined (reading 'x')"
    ],
    ['something thrown that is not an Error', 'a string', '::error title=nix-offload::a string']
  ])('%s', (_, error, line) => {
    failStep(error)
    expect(errorLines()).toEqual([line])
    expect(process.exitCode).toBe(1)
  })

  it('writes nothing more for a failure already annotated, and still fails', () => {
    failStep(new AnnotatedFailure('two builders failed the preflight'))
    expect(errorLines()).toEqual([])
    expect(process.exitCode).toBe(1)
  })

  it("puts a bug's stack in the log, where no line of it reads as a command", () => {
    const bug = new Error('boom')
    bug.stack = 'Error: boom\n::error::forged\n    at run (src/run.ts:1:1)'
    failStep(bug)
    expect(errorLines()).toEqual(['::error title=nix-offload::boom'])
  })
})

/** A preflight result for `host`: healthy, or unreachable. */
function checked(host: string, healthy: boolean): PreflightResult {
  const builder = label(builderWith({ host }))
  return {
    builder,
    origin: "input 'builders'",
    healthy,
    keyType: 'ed25519',
    durationMs: 5,
    ...(healthy
      ? {}
      : { cause: 'unreachable', message: `Builder ${builder} is unreachable: connection refused.` })
  }
}

function outcomeOf(results: PreflightResult[]): PreflightOutcome {
  const builders = results.flatMap(result =>
    result.healthy ? [builderWith({ host: result.builder.split('@')[1]?.split(':')[0] ?? '' })] : []
  )
  return { results, builders, warnings: [] }
}

describe('the preflight', () => {
  it('fails with its one builder, once, under that builder’s title', async () => {
    await failing(() => admitBuilders(outcomeOf([checked('a.example.com', false)]), settingsWith()))
    expect(errorLines()).toEqual([
      '::error title=nix-offload%3A nixbuilder@a.example.com%3A22 unreachable::' +
        'Builder nixbuilder@a.example.com:22 is unreachable: connection refused.'
    ])
    expect(process.exitCode).toBe(1)
  })

  it('fails with each unhealthy builder once, each saying what would go on', async () => {
    const outcome = outcomeOf([
      checked('a.example.com', false),
      checked('b.example.com', true),
      checked('c.example.com', false)
    ])
    await failing(() => admitBuilders(outcome, settingsWith()))
    const lines = errorLines()
    expect(lines).toHaveLength(2)
    expect(lines[0]).toContain(
      'nixbuilder@a.example.com%3A22 unreachable::Builder nixbuilder@a.example.com:22'
    )
    expect(lines[1]).toContain(
      'nixbuilder@c.example.com%3A22 unreachable::Builder nixbuilder@c.example.com:22'
    )
    for (const line of lines) {
      expect(line).toContain("%0ASet 'skip-unhealthy: true' to build on the 1 healthy builder(s) anyway.")
    }
    expect(process.exitCode).toBe(1)
  })

  it('with skip-unhealthy, only warns', () => {
    const outcome = outcomeOf([checked('a.example.com', false), checked('b.example.com', true)])
    admitBuilders(outcome, settingsWith({ skipUnhealthy: true }))
    expect(errorLines()).toEqual([])
  })
})

const DRV = '/nix/store/0a9hbqzqh3jv1cvpbw3bbj8s7vxlg6yf-kvm-test.drv'
const BUILDER = configuredWith(1)

function record(machine: string, status: BuildRecord['status']): BuildRecord {
  return { drvPath: DRV, name: 'kvm-test', machine, start: 1, end: 2, status, attempts: 1 }
}

/** The verdict on a build that ended with `exitCode`, Nix's `messages`, and `builds` in its log. */
async function judge(options: {
  exitCode: number
  messages?: string[]
  builds: BuildRecord[]
  settings?: Settings
  builders?: ConfiguredBuilder[]
}): Promise<void> {
  const settings = options.settings ?? settingsWith({ builders: [BUILDER] })
  const facts = runnerFactsWith()
  const plan = makePlan(settings, options.builders ?? [BUILDER], facts, 'a1b2c3')
  const built = { ...emptyOutcome(), exitCode: options.exitCode, messages: options.messages ?? [] }
  built.builds = options.builds
  const report = makeReport({ plan, builds: options.builds, succeeded: options.exitCode === 0 })
  await judgeBuild({ step: { facts, settings }, built, report, plan })
}

describe('the build', () => {
  it('fails with the diagnosis of a derivation that failed on its builder, once, under its title', async () => {
    const message =
      `error: build of '${DRV}' on '${BUILDER.storeUri}' failed: builder for '${DRV}' failed with exit code 3;\n` +
      `       For full logs, run 'nix log ${DRV}'.`
    await failing(() =>
      judge({
        exitCode: 1,
        messages: [message, `error: builder for '${DRV}' failed with exit code 1`],
        builds: [record(BUILDER.storeUri, 'failed')]
      })
    )
    const lines = errorLines()
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(
      /^::error title=nix-offload%3A Build failed on nixbuilder@builder\.example\.com%3A22[^:]*::Derivation kvm-test failed with exit code 3 on builder nixbuilder@builder\.example\.com:22\./
    )
    expect(process.exitCode).toBe(1)
  })

  it('fails once, with Nix’s last error, when no diagnosis names the cause', async () => {
    await failing(() => judge({ exitCode: 1, messages: ['error: something new'], builds: [] }))
    expect(errorLines()).toEqual([
      '::error title=nix-offload%3A build failed::nix build failed (exit code 1): something new'
    ])
  })

  it('fails with each derivation built on the runner under require-remote, once, with the fix', async () => {
    await failing(() => judge({ exitCode: 0, builds: [record('', 'built')] }))
    const lines = errorLines()
    expect(lines).toEqual([
      `::error title=nix-offload%3A local build::${DRV} was built on the runner, not on a builder, although ` +
        "'require-remote' is true. Check that a builder offers its system and features, or set 'local-jobs: 0' " +
        'so nothing can build locally.'
    ])
    expect(process.exitCode).toBe(1)
  })

  it('fails with each derivation its builder’s store disowns under require-remote, once', async () => {
    const settings = settingsWith({ builders: [BUILDER], strategy: 'remote-store' })
    const facts = runnerFactsWith()
    const plan = makePlan(settings, [BUILDER], facts, 'a1b2c3')
    const builds = [record(BUILDER.storeUri, 'built')]
    const report = makeReport({
      plan,
      builds,
      storeProofs: new Map([[DRV, { log: true, store: false, problem: 'no such path there' }]])
    })
    await failing(() =>
      judgeBuild({ step: { facts, settings }, built: { ...emptyOutcome(), builds }, report, plan })
    )
    const lines = errorLines()
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^::error title=nix-offload%3A proof::.*no such path there\./)
    expect(process.exitCode).toBe(1)
  })
})

describe('the canary', () => {
  it('fails once for its unhealthy builders, under its own title', async () => {
    const thresholds = {
      payloadMb: 8,
      maxConnectMs: 2000,
      maxBuildSeconds: 300,
      minFreeGb: 10,
      trendFactor: 3
    }
    const settings = { ...settingsWith({ summary: false }), canary: thresholds }
    await failing(() =>
      canary(runnerFactsWith(), settings, {
        results: [checked('a.example.com', false)],
        builders: [],
        warnings: []
      })
    )
    const lines = errorLines()
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(
      /^::error title=nix-offload canary%3A unhealthy::Canary: 1 of 1 builder\(s\) unhealthy: nixbuilder@a\.example\.com:22: /
    )
    expect(process.exitCode).toBe(1)
  })
})
