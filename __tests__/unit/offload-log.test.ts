import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  endGroup,
  failStep,
  logError,
  logInfo,
  logLine,
  logWarning,
  Phase,
  startGroup,
  StepError,
  stopCommands
} from '../../src/base/index.js'
import type { Built } from '../../src/offload-build.js'
import type { OffloadStep } from '../../src/offload-setup.js'
import { offload } from '../../src/offload.js'
import { makeReport } from '../../src/report/index.js'
import type { Plan } from '../../src/runner/index.js'
import { emptyOutcome } from '../../src/nix/store-build.js'
import { SpeculativeConfiguration } from '../../src/speculative.js'
import { runnerFactsWith } from './support/runner.js'
import { settingsWith } from './support/settings.js'
import { captureStdout, readLayout } from './support/step-log.js'

/**
 * The build mode's phases as offload.ts runs them, each replaced by a fake that prints what the real one prints (a
 * line, an annotation, the relayed build log) and may throw: the log's layout is offload.ts's alone.
 */
const scenario = {
  strategy: 'hook' as 'hook' | 'remote-store',
  wantsBuild: true,
  buildThrows: false,
  verdictThrows: false
}

vi.mock('../../src/offload-setup.js', () => ({
  startEarly: () => Promise.resolve({ decided: undefined, needing: Promise.resolve({}) }),
  admit: () => {
    logInfo('✓ nixbuilder@b1:22, TCP 3 ms')
    logWarning('nixbuilder@b1:22 is low on disk', { title: 'nix-offload: low on disk' })
    return Promise.resolve({ builders: [], checks: { preflight: [], stores: [] } })
  },
  choose: () => {
    logInfo(`Strategy: ${scenario.strategy}: the test says so.`)
    return Promise.resolve({ strategy: scenario.strategy, reason: 'the test says so', routes: [] })
  },
  configure: () => {
    logInfo('Configuring for root (machines-file).')
    logWarning('a plan warning', { title: 'nix-offload' })
    logInfo('Builder ssh-ng://nixbuilder@nix-offload-1 → nixbuilder@b1:22 (x86_64-linux)')
    return Promise.resolve({
      plan: { path: scenario.strategy },
      journal: { asRoot: false, undo: [] },
      masters: {}
    })
  }
}))

vi.mock('../../src/offload-build.js', async importOriginal => ({
  ...(await importOriginal<typeof import('../../src/offload-build.js')>()),
  buildBuilt: (): Promise<Built> => {
    const resume = stopCommands()
    logLine('[nixbuilder@b1:22] hello> ::error::printed by the build')
    resume()
    if (scenario.buildThrows) return Promise.reject(new StepError('nix did not start', 'nix-offload: build'))
    logWarning('not a store path', { title: 'nix-offload: not a store path' })
    return Promise.resolve({ ...emptyOutcome(), exitCode: scenario.verdictThrows ? 1 : 0 })
  },
  undoStorePlan: (configured: { plan: Plan }) =>
    configured.plan.path === 'remote-store'
      ? Promise.resolve("Closed this step's SSH master and removed its files.")
      : undefined,
  reportBuild: () => {
    logInfo("Proof: Nix's log shows 1 derivation(s) built on nixbuilder@b1:22.")
    return Promise.resolve(makeReport({}))
  },
  reportConfigureOnly: () => {
    logInfo('No installables or args: the runner is configured.')
    return Promise.resolve()
  }
}))

vi.mock('../../src/offload-verdict.js', () => ({
  judgeBuild: ({ built }: { built: Built }) => {
    logInfo('Builder nixbuilder@b1:22 answers again.')
    logWarning('a finding', { title: 'nix-offload: finding' })
    if (built.exitCode !== 0) {
      logError('a second cause', { title: 'nix-offload: cause' })
      return Promise.reject(new StepError('nix build failed', 'nix-offload: build'))
    }
    return Promise.resolve()
  }
}))

const step: OffloadStep = {
  facts: runnerFactsWith(),
  settings: settingsWith(),
  token: '0123456789abcdef',
  // Nothing is made early without a key, and the fakes ask nothing of it.
  speculation: SpeculativeConfiguration.atStepStart(settingsWith({ keyMissing: true }), '0123456789abcdef')
}

/** offload() as run.ts calls it: inside the preflight's group, its error the step's failure. */
async function runOffload(settings = step.settings): Promise<void> {
  startGroup(Phase.Preflight)
  try {
    await offload({ ...step, settings }, Promise.resolve({ results: [], builders: [], warnings: [] }))
  } catch (error) {
    failStep(error)
  } finally {
    endGroup()
  }
}

let stdout: ReturnType<typeof captureStdout>
beforeEach(() => {
  Object.assign(scenario, { strategy: 'hook', wantsBuild: true, buildThrows: false, verdictThrows: false })
  stdout = captureStdout()
})
afterEach(() => {
  stdout.restore()
  process.exitCode = undefined
})

const titles = (): string[] => readLayout(stdout.text()).groups.map(group => group.title)

describe('the log of a build-mode step: a group per phase, one after the other', () => {
  it('folds preflight, configure, build, proof and verdict; annotations outside; the build log in its group', async () => {
    await runOffload()
    const layout = readLayout(stdout.text())
    expect(titles()).toEqual(['Preflight', 'Configure', 'Configure (continued)', 'Build', 'Proof', 'Verdict'])
    expect(layout.annotations.map(line => /^::(\w+) title=([^:]*)::/.exec(line)?.slice(1).join(' '))).toEqual(
      [
        'warning nix-offload%3A low on disk',
        'warning nix-offload',
        'warning nix-offload%3A not a store path',
        'warning nix-offload%3A finding'
      ]
    )
    const build = layout.groups.find(group => group.title === 'Build')
    expect(build?.lines).toContain('[nixbuilder@b1:22] hello> ::error::printed by the build')
  })

  it("gives main's own undo of the remote-store plan its group, after the proof's", async () => {
    scenario.strategy = 'remote-store'
    await runOffload()
    expect(titles()).toEqual([
      'Preflight',
      'Configure',
      'Configure (continued)',
      'Build',
      'Proof',
      'Undo',
      'Verdict'
    ])
  })

  it('ends the group of a build that throws before the step fails, and starts no later phase', async () => {
    scenario.buildThrows = true
    await runOffload()
    const layout = readLayout(stdout.text())
    expect(titles()).toEqual(['Preflight', 'Configure', 'Configure (continued)', 'Build'])
    expect(layout.annotations.at(-1)).toBe('::error title=nix-offload%3A build::nix did not start')
    expect(stdout.text().trimEnd().split('\n').slice(-2)).toEqual([
      '::endgroup::',
      '::error title=nix-offload%3A build::nix did not start'
    ])
  })

  it("ends the verdict's group before the step fails, every finding outside it", async () => {
    scenario.verdictThrows = true
    await runOffload()
    const layout = readLayout(stdout.text())
    expect(titles().at(-1)).toBe('Verdict')
    expect(layout.annotations.slice(-3).map(line => /^::(\w+)/.exec(line)?.[1])).toEqual([
      'warning',
      'error',
      'error'
    ])
    expect(layout.annotations.at(-1)).toBe('::error title=nix-offload%3A build::nix build failed')
  })

  it('leaves the line of a configure-only step outside the groups', async () => {
    await runOffload(settingsWith({ installables: [], args: [] }))
    const layout = readLayout(stdout.text())
    expect(titles()).toEqual(['Preflight', 'Configure', 'Configure (continued)'])
    expect(layout.outside.at(-1)).toBe('No installables or args: the runner is configured.')
  })
})
