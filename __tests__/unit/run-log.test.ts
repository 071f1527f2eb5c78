import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { logInfo, Phase, startGroup, StepError } from '../../src/base/index.js'
import { run } from '../../src/run.js'
import { runnerFactsWith } from './support/runner.js'
import { settingsWith } from './support/settings.js'
import { captureStdout, readLayout } from './support/step-log.js'

/** run.ts with the runner probe, the preflight and the build mode faked: what it prints around them. */
const scenario = { offloadThrows: false }

vi.mock('../../src/inputs/index.js', async importOriginal => ({
  ...(await importOriginal<typeof import('../../src/inputs/index.js')>()),
  takeBuildInputs: () => () => '',
  parseSettings: () => settingsWith({ notices: ["'builders' names no port: 22 is used."] }),
  withRunnerSystem: (settings: unknown) => settings
}))

vi.mock('../../src/runner/index.js', async importOriginal => ({
  ...(await importOriginal<typeof import('../../src/runner/index.js')>()),
  childRecorder: () => undefined,
  probeRunner: () => Promise.resolve(runnerFactsWith({ nixVersion: '2.34.8' }))
}))

vi.mock('../../src/builders/index.js', async importOriginal => ({
  ...(await importOriginal<typeof import('../../src/builders/index.js')>()),
  preflight: () => {
    logInfo('✓ nixbuilder@b1:22, TCP 3 ms')
    return Promise.resolve({ results: [], builders: [], warnings: [] })
  }
}))

vi.mock('../../src/offload.js', () => ({
  offload: async () => {
    await Promise.resolve()
    // Still the preflight's group: the builders' admission.
    logInfo('✗ nixbuilder@b1:22: unreachable')
    if (scenario.offloadThrows)
      throw new StepError('Builder nixbuilder@b1:22 is unreachable', 'nix-offload: unreachable')
    startGroup(Phase.Build)
    logInfo('hello> building')
  }
}))

let stdout: ReturnType<typeof captureStdout>
beforeEach(() => {
  scenario.offloadThrows = false
  stdout = captureStdout()
})
afterEach(() => {
  stdout.restore()
  process.exitCode = undefined
})

describe('the log of the main step', () => {
  it("opens with the preflight's group: the runner, the key, the builders' checks; notices outside it", async () => {
    await run()
    const layout = readLayout(stdout.text())
    // The notice came between the runner's lines and the builders' admission.
    expect(layout.groups.map(group => group.title)).toEqual(['Preflight', 'Preflight (continued)', 'Build'])
    const preflight = layout.groups[0]?.lines ?? []
    expect(preflight.some(line => line.startsWith('Runner: Nix 2.34.8 on x86_64-linux'))).toBe(true)
    expect(preflight.some(line => line.startsWith('Client key: ssh-ed25519'))).toBe(true)
    expect(preflight).toContain('✓ nixbuilder@b1:22, TCP 3 ms')
    expect(layout.annotations).toEqual([
      "::notice title=nix-offload%3A inputs::'builders' names no port: 22 is used."
    ])
    expect(process.exitCode).toBeUndefined()
  })

  it('ends the open group before the error line of a step that fails', async () => {
    scenario.offloadThrows = true
    await run()
    const layout = readLayout(stdout.text())
    expect(layout.groups.map(group => group.title)).toEqual(['Preflight', 'Preflight (continued)'])
    expect(stdout.text().trimEnd().split('\n').slice(-2)).toEqual([
      '::endgroup::',
      '::error title=nix-offload%3A unreachable::Builder nixbuilder@b1:22 is unreachable'
    ])
    expect(process.exitCode).toBe(1)
  })
})
