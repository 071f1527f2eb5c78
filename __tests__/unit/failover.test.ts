import { describe, expect, it, vi } from 'vitest'
import type { PreflightResult } from '../../src/builders/index.js'
import {
  type FailoverTools,
  hookWithFailover,
  type HookTools,
  reroute,
  storeWithFailover,
  type StoreTools
} from '../../src/failover.js'
import type { ConfiguredBuilder, Settings } from '../../src/inputs/index.js'
import type { BuildOutcome, BuildRecord, StoreBuildOutcome, StoreRoute } from '../../src/nix/index.js'
import { machinesFileOp } from '../../src/runner/index.js'
import { emptyOutcome } from '../../src/nix/store-build.js'
import { configuredWith } from './support/builders.js'
import { settingsWith } from './support/settings.js'

vi.mock('@actions/core', () => ({ warning: vi.fn(), info: vi.fn() }))

const B1 = configuredWith(1)
const B2 = configuredWith(2, { host: 'two.example.com' })
const DRV = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-slow.drv'
const DONE = '/nix/store/1123456789abcdfghijklmnpqrsvwxyz-done.drv'

function record(drvPath: string, machine: string, status: BuildRecord['status']): BuildRecord {
  return { drvPath, name: 'x', machine, start: 1, status, attempts: 1 }
}

function outcome(overrides: Partial<BuildOutcome> = {}): StoreBuildOutcome {
  return { ...emptyOutcome(), ...overrides }
}

/** An attempt that lost `builder` mid-build, after it had built DONE. */
function lostOn(builder: ConfiguredBuilder): StoreBuildOutcome {
  return outcome({
    exitCode: 1,
    builds: [record(DONE, builder.storeUri, 'built'), record(DRV, builder.storeUri, 'unfinished')],
    messages: [`error: build of '${DRV}' on '${builder.storeUri}' failed: error: unexpected end-of-file`]
  })
}

function scriptFailedOn(builder: ConfiguredBuilder): StoreBuildOutcome {
  return outcome({
    exitCode: 1,
    builds: [record(DRV, builder.storeUri, 'failed')],
    messages: [
      `error: build of '${DRV}' on '${builder.storeUri}' failed: builder for '${DRV}' failed with exit code 1`
    ]
  })
}

function healthy(up: boolean): PreflightResult {
  return up
    ? { builder: 'b', origin: 'o', healthy: true, keyType: 'ssh-ed25519', durationMs: 1 }
    : {
        builder: 'b',
        origin: 'o',
        healthy: false,
        cause: 'unreachable',
        message: 'b: unreachable',
        keyType: 'k',
        durationMs: 1
      }
}

function baseTools(up: (builder: ConfiguredBuilder) => boolean): FailoverTools {
  return { check: builder => Promise.resolve(healthy(up(builder))), now: () => 0, info: () => undefined }
}

/** Hook tools whose builds return `attempts` in turn; they record each build's settings and machines rewrite. */
function hookTools(attempts: StoreBuildOutcome[], up: (b: ConfiguredBuilder) => boolean = () => false) {
  const builds: Settings[] = []
  const machines: string[][] = []
  const tools: HookTools = {
    ...baseTools(up),
    build: settings => {
      builds.push(settings)
      return Promise.resolve(attempts.shift() ?? outcome())
    },
    useMachines: builders => {
      machines.push(builders.map(b => b.storeUri))
      return Promise.resolve()
    }
  }
  return { tools, builds, machines }
}

describe('hookWithFailover', () => {
  const job = (settings: Partial<Settings> = {}) => ({
    settings: settingsWith(settings),
    builders: [B1, B2],
    runnerUser: 'runner'
  })

  it('builds again without the lost builder, keeping what was built, and records where its work went', async () => {
    const { tools, machines } = hookTools([
      lostOn(B1),
      outcome({ builds: [record(DRV, B2.storeUri, 'built')] })
    ])
    const built = await hookWithFailover({ ...job(), tools })
    expect(built.exitCode).toBe(0)
    expect(machines).toEqual([[B2.storeUri]])
    expect(built.builds.map(b => [b.drvPath, b.machine, b.attempts])).toEqual([
      [DONE, B1.storeUri, 1],
      [DRV, B2.storeUri, 2]
    ])
    expect(built.failovers).toEqual([
      expect.objectContaining({ builder: B1.storeUri, cause: 'connection-dropped', movedTo: [B2.storeUri] })
    ])
    expect(built.failovers[0]?.derivations).toEqual([DRV])
  })

  it('keeps a builder that answers the second look, and builds on it again', async () => {
    const { tools, machines, builds } = hookTools([lostOn(B1), outcome()], () => true)
    const built = await hookWithFailover({ ...job(), tools })
    expect(built.exitCode).toBe(0)
    expect(machines).toEqual([])
    expect(builds).toHaveLength(2)
  })

  it('finds the lost builder by the second look when the dropped connection names no derivation', async () => {
    // Nix 2.8's hook dies with a bare `unexpected end-of-file`: the diagnosis guesses the last remote build, here on
    // B2, the healthy one, while B1 is the builder that went away. B1's cut-off build ends in the log as if done.
    const dropped = outcome({
      exitCode: 1,
      builds: [
        { ...record(DRV, B1.storeUri, 'built'), start: 1 },
        { ...record(DONE, B2.storeUri, 'unfinished'), start: 2 }
      ],
      messages: ['error: unexpected end-of-file']
    })
    const again = outcome({ builds: [record(DRV, B2.storeUri, 'built'), record(DONE, B2.storeUri, 'built')] })
    const said: string[] = []
    const { tools, machines } = hookTools([dropped, again], b => b.storeUri === B2.storeUri)
    const built = await hookWithFailover({ ...job(), tools: { ...tools, info: line => said.push(line) } })
    expect(built.exitCode).toBe(0)
    expect(machines).toEqual([[B2.storeUri]])
    expect(built.failovers.map(f => [f.builder, f.movedTo, f.derivations])).toEqual([
      [B1.storeUri, [B2.storeUri], [DRV]]
    ])
    expect(said.join('\n')).not.toContain('answers again')
  })

  it('never builds a failed builder script again', async () => {
    const { tools, builds } = hookTools([scriptFailedOn(B1)])
    const built = await hookWithFailover({ ...job({ retries: 3 }), tools })
    expect(built.exitCode).toBe(1)
    expect(builds).toHaveLength(1)
    expect(built.failovers).toEqual([])
  })

  it('with retries 0, stops after the first attempt', async () => {
    const { tools, builds } = hookTools([lostOn(B1)])
    expect((await hookWithFailover({ ...job({ retries: 0 }), tools })).exitCode).toBe(1)
    expect(builds).toHaveLength(1)
  })

  it('stops after `retries` attempts more', async () => {
    const { tools, builds } = hookTools([lostOn(B1), lostOn(B1), lostOn(B1)], () => true)
    await hookWithFailover({ ...job({ retries: 2 }), tools })
    expect(builds).toHaveLength(3)
  })

  it('with `fallback: local`, builds on the runner once no builder is left', async () => {
    const { tools, builds, machines } = hookTools([
      lostOn(B1),
      outcome({ builds: [record(DRV, '', 'built')] })
    ])
    const built = await hookWithFailover({ ...job({ fallback: 'local' }), builders: [B1], tools })
    expect(built.exitCode).toBe(0)
    expect(machines).toEqual([[]])
    expect(builds[1]?.localJobs).toBeGreaterThan(0)
    expect(built.failovers[0]?.movedTo).toEqual(['local'])
  })

  it('without `fallback: local`, fails once no builder is left, the lost one recorded', async () => {
    const { tools, builds } = hookTools([lostOn(B1)])
    const built = await hookWithFailover({ ...job(), builders: [B1], tools })
    expect(built.exitCode).toBe(1)
    expect(builds).toHaveLength(1)
    expect(built.failovers[0]).toMatchObject({ builder: B1.storeUri, movedTo: [] })
  })
})

describe('the machines rewrite', () => {
  it("names only the builders left, in this job's own block", () => {
    const op = machinesFileOp({ token: 'a1b2c3', machinesFile: '/etc/nix/machines', machinesShared: true }, [
      B2
    ])
    expect(op).toMatchObject({ op: 'set-block', path: '/etc/nix/machines', token: 'a1b2c3' })
    const text = 'text' in op ? op.text : ''
    expect(text).toContain(B2.storeUri)
    expect(text).not.toContain(`${B1.storeUri} `)
  })
})

describe('remote-store failover', () => {
  const route: StoreRoute = {
    index: 0,
    label: 'b1',
    storeUri: B1.storeUri,
    installables: ['.#slow'],
    derivations: [{ drvPath: DRV, outputs: ['out'], order: 0 }],
    maxJobs: 1
  }

  it('moves a lost route to another builder that fits', () => {
    expect(reroute(route, [B1, B2], new Set([B1.storeUri]))).toMatchObject({
      index: 1,
      storeUri: B2.storeUri,
      installables: ['.#slow']
    })
  })

  it('finds no builder that lacks a system or a feature of the lost one', () => {
    const arm = configuredWith(2, { systems: ['aarch64-linux'] })
    const kvm = configuredWith(3, { mandatoryFeatures: ['kvm'] })
    expect(reroute(route, [B1, arm, kvm], new Set([B1.storeUri]))).toBeUndefined()
  })

  function storeTools(attempts: StoreBuildOutcome[]) {
    const routes: string[] = []
    const onRunner: string[] = []
    const tools: StoreTools = {
      ...baseTools(() => false),
      build: some => {
        routes.push(...some.map(r => r.storeUri))
        return Promise.resolve(attempts.shift() ?? outcome())
      },
      buildOnRunner: r => {
        onRunner.push(...r.installables)
        return Promise.resolve(outcome({ builds: [record(DRV, '', 'built')] }))
      }
    }
    return { tools, routes, onRunner }
  }

  it('builds the lost route on the next builder, and records it', async () => {
    const { tools, routes } = storeTools([
      lostOn(B1),
      outcome({ builds: [record(DRV, B2.storeUri, 'built')] })
    ])
    const built = await storeWithFailover({
      settings: settingsWith({ strategy: 'remote-store' }),
      builders: [B1, B2],
      runnerUser: 'runner',
      routes: [route],
      tools
    })
    expect(built.exitCode).toBe(0)
    expect(routes).toEqual([B1.storeUri, B2.storeUri])
    expect(built.failovers[0]).toMatchObject({ builder: B1.storeUri, movedTo: [B2.storeUri] })
  })

  it('with `fallback: local` and no builder left, builds the route on the runner', async () => {
    const { tools, onRunner } = storeTools([lostOn(B1)])
    const built = await storeWithFailover({
      settings: settingsWith({ strategy: 'remote-store', fallback: 'local' }),
      builders: [B1],
      runnerUser: 'runner',
      routes: [route],
      tools
    })
    expect(built.exitCode).toBe(0)
    expect(onRunner).toEqual(['.#slow'])
    expect(built.builds.find(b => b.drvPath === DRV)?.machine).toBe('')
    expect(built.failovers[0]?.movedTo).toEqual(['local'])
  })
})
