import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { logInfo, logLine, stopCommands } from '../../../src/base/index.js'
import type { PreflightResult } from '../../../src/builders/index.js'
import { canary } from '../../../src/canary/canary.js'
import { label } from '../../../src/inputs/index.js'
import type { BuildOutcome } from '../../../src/nix/index.js'
import { emptyOutcome } from '../../../src/nix/store-build.js'
import { runnerFactsWith } from '../support/runner.js'
import { builderWith, settingsWith } from '../support/settings.js'
import { captureStdout, readLayout } from '../support/step-log.js'

/** The canary's log, with the runner's configuration, the builds and the history faked: a group per phase. */
vi.mock('../../../src/runner/index.js', async importOriginal => {
  const real = await importOriginal<typeof import('../../../src/runner/index.js')>()
  return {
    ...real,
    configureRunner: (plan: { builders: { storeUri: string }[] }) => {
      logInfo('Configuring for root (machines-file).')
      const stores = plan.builders.map(builder => ({ storeUri: builder.storeUri, ok: true }))
      return Promise.resolve({ stores, journal: { asRoot: true, undo: [] }, masters: {} })
    },
    exportNixConfig: () => undefined,
    fileOps: (ops: unknown[]) => Promise.resolve(ops.map(() => ({ ok: true })))
  }
})

vi.mock('../../../src/nix/index.js', async importOriginal => ({
  ...(await importOriginal<typeof import('../../../src/nix/index.js')>()),
  runBuild: (): Promise<BuildOutcome> => {
    const resume = stopCommands()
    logLine('[nixbuilder@one.example.com:22] nix-offload-canary> building')
    resume()
    return Promise.resolve(emptyOutcome())
  }
}))

vi.mock('../../../src/canary/history-cache.js', () => ({
  restoreHistory: () => {
    logInfo('Canary history: none saved yet; trends start with this run.')
    return Promise.resolve({ samples: [] })
  },
  saveHistory: () => Promise.resolve()
}))

const ONE = builderWith({ host: 'one.example.com' })
const TWO = builderWith({ host: 'two.example.com' })

function result(healthy: boolean, builder: string): PreflightResult {
  const found = { builder, origin: "input 'builders'", healthy, keyType: 'ssh-ed25519', durationMs: 5 }
  return healthy
    ? { ...found, connectMs: 3 }
    : { ...found, cause: 'unreachable', message: `${builder} is down` }
}

let stdout: ReturnType<typeof captureStdout>
let runnerTemp = ''
beforeEach(() => {
  // The canary writes its payload and expression there.
  runnerTemp = mkdtempSync(join(tmpdir(), 'nix-offload-canary-log-'))
  vi.stubEnv('RUNNER_TEMP', runnerTemp)
  stdout = captureStdout()
})
afterEach(() => {
  stdout.restore()
  vi.unstubAllEnvs()
  rmSync(runnerTemp, { recursive: true, force: true })
})

describe('the log of a canary step', () => {
  it('folds the configuration, one build per healthy builder and the trend; the failure outside them', async () => {
    const settings = {
      ...settingsWith({ builders: [ONE, TWO], summary: false }),
      canary: { payloadMb: 0.001, maxConnectMs: 2000, maxBuildSeconds: 300, minFreeGb: 10, trendFactor: 3 }
    }
    const checked = {
      results: [result(true, label(ONE)), result(false, label(TWO))],
      builders: [ONE],
      warnings: []
    }
    await expect(canary(runnerFactsWith(), settings, checked)).rejects.toThrow(
      /Canary: 2 of 2 builder\(s\) unhealthy/
    )
    const layout = readLayout(stdout.text())
    expect(layout.groups.map(group => group.title)).toEqual([
      'Configure',
      `Build on ${label(ONE)}`,
      'Verdict'
    ])
    expect(layout.groups[1]?.lines).toContain('[nixbuilder@one.example.com:22] nix-offload-canary> building')
  })
})
