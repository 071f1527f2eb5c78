import { mkdirSync, symlinkSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { saveHistory } from '../../src/canary/history-cache.js'
import { type CanarySample, historyId } from '../../src/canary/trend.js'
import { startCacheServer } from '../support/cache-server.js'
import {
  builder,
  builderCtl,
  builderInputs,
  chownTree,
  firstError,
  hostPath,
  type Lab,
  loadLab,
  newStepDir,
  reportOf,
  runCanary,
  runCommandAs,
  runMain,
  runOnHost,
  runPost,
  type StepResult,
  visibleLog
} from './harness.js'
import { startBuilders, watchFiles } from './setup.js'

const lab: Lab = loadLab()
const a = builder(lab, 'a')
const b = builder(lab, 'b')

interface CanaryReport {
  mode: string
  builders: {
    builder: string
    healthy: boolean
    problems: string[]
    warnings: string[]
    storeUri?: string
    builtOn?: string
    connectMs?: number
    buildSeconds?: number
    uploadMBps?: number
    downloadMBps?: number
    uploadSeconds?: number
    downloadSeconds?: number
    freeGb?: number
  }[]
}

export const TWO_BUILDERS = {
  ...builderInputs(lab, 'a'),
  builders: `ssh-ng://${b.user}@${b.host}:${b.port}`,
  'known-hosts': `[${b.host}]:${b.port} ${b.hostPublicKey}`,
  'canary-payload-mb': '2',
  'min-free-gb': '1'
}

/** The canary action's step, then the post step, which must succeed and leave the runner's files as they were. */
async function canary(
  inputs: Record<string, string>,
  env: Record<string, string> = {},
  dir?: string
): Promise<StepResult> {
  const filesKept = watchFiles(lab)
  const main = await runCanary(lab, inputs, dir === undefined ? { env } : { env, dir })
  const post = await runPost(lab, main)
  expect(post.code).toBe(0)
  filesKept()
  return main
}

async function gcRoots(): Promise<string> {
  const roots = await runCommandAs(lab, 'root', ['nix-store', '--gc', '--print-roots'])
  return roots.stdout
}

afterEach(() => startBuilders(lab, ['a', 'b']))

describe('canary', () => {
  it('two healthy builders: each nonce derivation confirmed on its builder, transfer figures present', async () => {
    const main = await canary(TWO_BUILDERS)
    expect(main.code, visibleLog(main)).toBe(0)
    expect(main.outputs).toMatchObject({ healthy: 'true', 'builders-healthy': '2' })
    const report = reportOf<CanaryReport>(lab, main)
    expect(report.mode).toBe('canary')
    expect(report.builders.map(entry => entry.builder)).toEqual([
      `nixbuilder@127.0.0.1:${a.port}`,
      `nixbuilder@127.0.0.1:${b.port}`
    ])
    for (const entry of report.builders) {
      expect(entry.healthy, entry.problems.join('; ')).toBe(true)
      expect(entry.builtOn).toBe(entry.storeUri)
      for (const figure of [
        entry.connectMs,
        entry.buildSeconds,
        entry.uploadMBps,
        entry.downloadMBps,
        entry.freeGb
      ]) {
        expect(figure).toBeGreaterThan(0)
      }
    }
    // Each canary output is in its own builder's store only.
    const names = [
      ...visibleLog(main).matchAll(
        /building '\/nix\/store\/[a-z0-9]{32}-(nix-offload-canary-[0-9a-f]+-\d)\.drv' on '([^']+)'/g
      )
    ]
    expect(names).toHaveLength(2)
    expect(visibleLog(main)).not.toMatch(/deprecat/i)
    expect(main.summary).toContain('✅ **All 2 builder(s) healthy.**')
    expect(main.summary).toMatch(
      /\| `nixbuilder@127\.0\.0\.1:22\d1` \| `x86_64-linux` \| [\d.]+ ms \| [\d.]+ s \| [\d.]+ MB\/s \| [\d.]+ MB\/s \| [\d.]+ GB \| ✅ healthy/
    )
    expect(await gcRoots()).not.toContain('nix-offload-canary')
    const storeListingA = (await runOnHost(['ls', a.storeDir])).stdout
    const storeListingB = (await runOnHost(['ls', b.storeDir])).stdout
    const [first, second] = names
    expect(storeListingA).toContain(`${first?.[1]}`)
    expect(storeListingB).toContain(`${second?.[1]}`)
    expect(storeListingA).not.toContain(`${second?.[1]}`)
  })

  it('one builder down, one healthy: healthy=false, the healthy one still complete, the step names the down one', async () => {
    await builderCtl(lab, 'stop', 'a')
    const main = await canary(TWO_BUILDERS)
    expect(main.code).toBe(1)
    expect(main.outputs).toMatchObject({ healthy: 'false', 'builders-healthy': '1' })
    const [down, up] = reportOf<CanaryReport>(lab, main).builders
    expect(down?.healthy).toBe(false)
    expect(down?.problems.join(' ')).toContain('is unreachable')
    expect(up?.healthy).toBe(true)
    expect(up?.builtOn).toBe(up?.storeUri)
    for (const figure of [up?.connectMs, up?.buildSeconds, up?.uploadMBps, up?.downloadMBps, up?.freeGb]) {
      expect(figure).toBeGreaterThan(0)
    }
    expect(visibleLog(main)).toMatch(
      /::error title=nix-offload canary%3A unhealthy::Canary: 1 of 2 builder\(s\) unhealthy: nixbuilder@127\.0\.0\.1:22\d1: preflight: Builder nixbuilder@127\.0\.0\.1:22\d1 is unreachable/
    )
    expect(main.summary).toContain('❌ **1 of 2 builder(s) unhealthy.**')
  })

  it('the main action refuses `mode: canary`, naming the canary action, before it changes anything', async () => {
    const filesKept = watchFiles(lab)
    const main = await runMain(lab, { ...TWO_BUILDERS, mode: 'canary' })
    expect(main.code).toBe(1)
    expect(firstError(main)).toMatch(
      /^::error title=nix-offload%3A input mode::Input 'mode': "canary" is not a mode of this action, which only builds: the canary is its own action\. Use `uses: nix-offload\/nix-offload\/canary@v0`/
    )
    expect(main.state).toEqual({})
    expect((await runPost(lab, main)).code).toBe(0)
    filesKept()
  })

  it('an impossible threshold (max-connect-ms: 0) makes the builder unhealthy, with the figure', async () => {
    const main = await canary({
      ...builderInputs(lab, 'a'),
      'canary-payload-mb': '1',
      'min-free-gb': '1',
      'max-connect-ms': '0'
    })
    expect(main.code).toBe(1)
    expect(main.outputs.healthy).toBe('false')
    const [entry] = reportOf<CanaryReport>(lab, main).builders
    expect(entry?.problems).toEqual([
      expect.stringMatching(/^connect took [\d.]+ ms, over max-connect-ms 0$/)
    ])
    expect(visibleLog(main)).toMatch(
      /::error title=nix-offload canary%3A unhealthy::Canary: 1 of 1 builder\(s\) unhealthy: nixbuilder@127\.0\.0\.1:22\d1: connect took [\d.]+ ms, over max-connect-ms 0/
    )
  })

  it('warns (without failing) when a figure is far above the median of the history saved in the cache', async () => {
    const server = await startCacheServer()
    try {
      const dir = newStepDir(lab, 'runner')
      // @actions/cache keys an entry to its path's spelling: seed it from the path the runner will use, which for a
      // runner in a root filesystem is made to exist on the host too.
      if (lab.runner.root !== '') symlinkSync(hostPath(lab, dir), dir)
      const env = { ...server.env, GITHUB_WORKSPACE: dir, RUNNER_TEMP: dir }
      // Seed five earlier runs through the real @actions/cache client, from the path the action will use.
      for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value)
      const builderName = `nixbuilder@127.0.0.1:${a.port}`
      const earlier: CanarySample[] = [1, 2, 3, 4, 5].map(day => ({
        time: `2026-11-0${day}T03:00:00.000Z`,
        builder: builderName,
        connectMs: 1,
        buildSeconds: 0.001,
        uploadSeconds: 0.001,
        downloadSeconds: 0.001
      }))
      const historyDir = join(dir, 'nix-offload-canary-history')
      mkdirSync(historyDir, { recursive: true })
      expect(await saveHistory(historyId([builderName]), historyDir, earlier, 'seed-1')).not.toBe('')
      vi.unstubAllEnvs()
      chownTree(hostPath(lab, dir), lab.runnerUser)
      if (lab.runner.root !== '') unlinkSync(dir)

      const inputs = {
        ...builderInputs(lab, 'a'),
        'canary-payload-mb': '1',
        'min-free-gb': '1'
      }
      const main = await canary(inputs, env, dir)
      expect(main.code, visibleLog(main)).toBe(0)
      expect(main.outputs.healthy).toBe('true')
      expect(visibleLog(main)).toMatch(
        /::warning title=nix-offload canary%3A nixbuilder@127\.0\.0\.1%3A22\d1 slower::nixbuilder@127\.0\.0\.1:22\d1: build took [\d.]+ m?s, [\d.]+× its median of 1 ms over the last 5 runs \(trend-factor 3\)/
      )
      expect(reportOf<CanaryReport>(lab, main).builders[0]?.warnings.length).toBeGreaterThan(0)
      // This run's figures were saved as the newest entry, for the next run.
      expect(server.entries().map(entry => entry.key)).toHaveLength(2)
    } finally {
      vi.unstubAllEnvs()
      await server.close()
    }
  })
})
