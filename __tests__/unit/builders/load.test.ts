import { describe, expect, it } from 'vitest'
import { parseFacts } from '../../../src/builders/builder-facts.js'
import {
  admitBuilders,
  passOverLowOnDisk,
  type PreflightOutcome
} from '../../../src/builders/preflight-run.js'
import type { PreflightResult } from '../../../src/builders/preflight-verdict.js'
import { SetupError } from '../../../src/inputs/errors.js'
import {
  type Builder,
  type BuilderLoad,
  byFreeCapacity,
  capacities,
  freeCapacity,
  label
} from '../../../src/inputs/index.js'
import { loadedSpeedFactors } from '../../../src/inputs/builder.js'
import { chooseStrategy, type StoreOffer } from '../../../src/nix/strategy.js'
import { makeReport, renderSummary } from '../../../src/report/index.js'
import { renderMachines } from '../../../src/runner/nix-config.js'
import { configuredWith } from '../support/builders.js'
import { builderWith, settingsWith } from '../support/settings.js'

const GIB = 2 ** 30

/** A shell's answer to factsCommands with the load lines as given, from a daemon whose build users are `group`'s. */
function answer(lines: string[], group = 'nixbld'): string {
  const config = JSON.stringify({ 'build-users-group': { value: group } })
  return [
    '@@nix-offload found yes',
    '@@nix-offload cores 4',
    ...lines,
    '@@nix-offload config',
    config,
    ''
  ].join('\n')
}

describe('parseFacts: how busy a builder is', () => {
  it("reads Linux /proc/loadavg and counts its daemon's build users that own a process", () => {
    const users = '@@nix-offload psusers nixbld1 nixbld12 nixbldx root sshd nixbuilder '
    expect(
      parseFacts('ssh-ng', answer(['@@nix-offload loadavg 3.52 1.58 0.59 5/467 12345', users]))
    ).toMatchObject({
      cores: 4,
      loadAverage: 3.52,
      runningBuilds: 2
    })
  })

  it("counts only this daemon's build users: another store's on the same machine are not its builds", () => {
    const users = '@@nix-offload psusers nixbld-a-1 nixbld-a-2 nixbld-b-3 root'
    expect(parseFacts('ssh-ng', answer([users], 'nixbld-b')).runningBuilds).toBe(1)
    expect(parseFacts('ssh-ng', answer([users], 'nixbld-a')).runningBuilds).toBe(2)
  })

  it("reads macOS's `sysctl -n vm.loadavg` and its _nixbld users, with a decimal comma too", () => {
    const facts = parseFacts(
      'ssh-ng',
      answer(['@@nix-offload loadavg { 1.23 1.45 1.67 }', '@@nix-offload psusers _nixbld3 root'])
    )
    expect(facts).toMatchObject({ loadAverage: 1.23, runningBuilds: 1 })
    expect(parseFacts('ssh-ng', answer(['@@nix-offload loadavg { 1,50 1,45 1,67 }'])).loadAverage).toBe(1.5)
  })

  it('leaves garbage, an empty answer, a failed `ps` and a daemon without build users unknown, never an error', () => {
    for (const [lines, group] of [
      [['@@nix-offload loadavg ', '@@nix-offload psusers '], 'nixbld'],
      [['@@nix-offload loadavg cat: /proc/loadavg: No such file', '@@nix-offload psusers nixbld1'], ''],
      [['@@nix-offload loadavg -1 2 3', '@@nix-offload psusers nixbld1'], 'nix bld'],
      [['@@nix-offload loadavg 1e308'], 'nixbld']
    ] as const) {
      const facts = parseFacts('ssh-ng', answer([...lines], group))
      expect(facts.loadAverage, lines[0]).toBeUndefined()
      expect(facts.runningBuilds, lines[1]).toBeUndefined()
    }
  })
})

describe('free capacity', () => {
  it('is cores / (1 + busy), busy the load average or the running builds when more', () => {
    expect(freeCapacity({ cores: 4, loadAverage: 1 })).toBe(2)
    expect(freeCapacity({ cores: 4, loadAverage: 0.5, runningBuilds: 3 })).toBe(1)
    expect(freeCapacity({ cores: 4, runningBuilds: 0 })).toBe(4)
  })

  it('is unknown without the cores, or without both figures', () => {
    expect(freeCapacity(undefined)).toBeUndefined()
    expect(freeCapacity({ loadAverage: 1 })).toBeUndefined()
    expect(freeCapacity({ cores: 4, storeFreeBytes: GIB })).toBeUndefined()
  })

  it('counts a builder whose load is unknown as the mean of the known ones', () => {
    expect(
      capacities([{ load: { cores: 4, loadAverage: 0 } }, {}, { load: { cores: 2, loadAverage: 1 } }])
    ).toEqual([4, 2.5, 1])
    expect(capacities([{}, { load: { cores: 2 } }])).toBeUndefined()
  })
})

const IDLE: BuilderLoad = { cores: 2, loadAverage: 0.02, runningBuilds: 0 }
const BUSY: BuilderLoad = { cores: 2, loadAverage: 5.9, runningBuilds: 1 }

describe('byFreeCapacity', () => {
  it('puts the builder with the most free capacity first', () => {
    const order = byFreeCapacity([
      { name: 'a', load: BUSY },
      { name: 'b', load: IDLE }
    ])
    expect(order.map(entry => entry.name)).toEqual(['b', 'a'])
  })

  it("keeps the given order on a tie, and where the load average's noise is all that differs", () => {
    const order = byFreeCapacity([
      { name: 'a', load: { cores: 2, loadAverage: 0.01 } },
      { name: 'b', load: { cores: 2, loadAverage: 0 } },
      { name: 'c', load: { cores: 2, loadAverage: 0.01 } }
    ])
    expect(order.map(entry => entry.name)).toEqual(['a', 'b', 'c'])
  })

  it('keeps the given order when no load is known', () => {
    expect(
      byFreeCapacity<{ name: string; load?: BuilderLoad }>([{ name: 'a' }, { name: 'b' }]).map(
        entry => entry.name
      )
    ).toEqual(['a', 'b'])
  })
})

describe('the machines file: speed-factors scaled by free capacity', () => {
  it('gives the busy builder the lower speed-factor: configured × 10 × cores / (1 + load)', () => {
    expect(
      loadedSpeedFactors([builderWith({ load: BUSY }), builderWith({ speedFactor: 2, load: IDLE })])
    ).toEqual([3, 39])
    const machines = renderMachines([configuredWith(1, { load: BUSY }), configuredWith(2, { load: IDLE })])
    expect(machines.split('\n').map(line => line.split(' ')[4])).toEqual(['3', '20', undefined])
  })

  it('never writes less than 1, and gives a builder whose load is unknown the mean', () => {
    expect(
      loadedSpeedFactors([builderWith({ load: { cores: 1, loadAverage: 100 } }), builderWith()])
    ).toEqual([1, 1])
    expect(loadedSpeedFactors([builderWith({ load: { cores: 8, loadAverage: 0 } }), builderWith()])).toEqual([
      80, 80
    ])
  })

  it('keeps the configured speed-factors with one builder, or when no load is known', () => {
    expect(loadedSpeedFactors([builderWith({ speedFactor: 3, load: BUSY })])).toEqual([3])
    expect(loadedSpeedFactors([builderWith({ speedFactor: 3 }), builderWith({ speedFactor: 5 })])).toEqual([
      3, 5
    ])
  })
})

function offer(index: number, load?: BuilderLoad): StoreOffer {
  return {
    index,
    label: `builder-${index + 1}`,
    protocol: 'ssh-ng',
    storeUri: `ssh-ng://nixbuilder@nix-offload-a1b2c3-${index + 1}`,
    maxJobs: 1,
    systems: ['x86_64-linux'],
    supportedFeatures: [],
    mandatoryFeatures: [],
    ...(load === undefined ? {} : { load })
  }
}

function routesFor(builders: StoreOffer[], systems: string[] = ['x86_64-linux']): string[] {
  const installables = systems.map((_, index) => `.#p${index}`)
  const choice = chooseStrategy({
    settings: settingsWith({ strategy: 'remote-store' }),
    wantsBuild: true,
    runner: { acceptsUnsignedPaths: true },
    builders,
    needs: systems.map((system, index) => ({
      installable: `.#p${index}`,
      drvPath: `/nix/store/00000000000000000000000000000000-p${index}.drv`,
      outputs: ['out'],
      system,
      features: []
    })),
    installables
  })
  return choice.routes.map(route => `${route.label}: ${route.installables.join(' ')}`)
}

describe('remote-store routing by load', () => {
  it('sends each installable to the least loaded builder that fits', () => {
    expect(routesFor([offer(0, BUSY), offer(1, IDLE)])).toEqual(['builder-2: .#p0'])
  })

  it('passes over a less loaded builder that does not fit', () => {
    const arm = { ...offer(1, IDLE), systems: ['aarch64-linux'] }
    expect(routesFor([offer(0, BUSY), arm], ['x86_64-linux', 'aarch64-linux'])).toEqual([
      'builder-1: .#p0',
      'builder-2: .#p1'
    ])
  })

  it("keeps today's order on a tie and when no load is known", () => {
    expect(routesFor([offer(0, IDLE), offer(1, IDLE)])).toEqual(['builder-1: .#p0'])
    expect(routesFor([offer(0), offer(1)])).toEqual(['builder-1: .#p0'])
  })
})

function result(builder: Builder, overrides: Partial<PreflightResult> = {}): PreflightResult {
  const entry: PreflightResult = {
    builder: label(builder),
    origin: builder.origin,
    healthy: true,
    keyType: 'ed25519',
    durationMs: 5
  }
  if (builder.load !== undefined) entry.load = builder.load
  return { ...entry, ...overrides }
}

describe('min-free-gib: a builder low on disk is passed over', () => {
  const low = builderWith({ host: 'a.example.com', load: { ...BUSY, storeFreeBytes: 3 * GIB } })
  const roomy = builderWith({ host: 'b.example.com', load: { ...IDLE, storeFreeBytes: 50 * GIB } })
  const unknown = builderWith({ host: 'c.example.com' })

  it('leaves out the builder under the threshold, warns, and notes it for the summary', () => {
    const results = [result(low), result(roomy), result(unknown)]
    const { builders, passedOver } = passOverLowOnDisk([low, roomy, unknown], results, 10)
    expect(builders.map(builder => builder.host)).toEqual(['b.example.com', 'c.example.com'])
    expect(passedOver).toEqual([
      {
        builder: 'nixbuilder@a.example.com:22',
        title: 'low on disk',
        message:
          "Builder nixbuilder@a.example.com:22 was passed over: 3.0 GiB free in its /nix/store, under 'min-free-gib: " +
          "10'. Fix: free space there (nix-collect-garbage), or lower 'min-free-gib'."
      }
    ])
    expect(results[0]?.passedOver).toBe("3.0 GiB free in its /nix/store, under 'min-free-gib: 10'")
    const summary = renderSummary(makeReport({ checks: { preflight: results, stores: [] } }), false)
    expect(summary).toContain(
      '**`nixbuilder@a.example.com:22`**: ⚠️ passed over: 3.0 GiB free in its /nix/store'
    )
  })

  it('passes over none with 0 (off)', () => {
    expect(passOverLowOnDisk([low, roomy], [result(low), result(roomy)], 0).builders).toEqual([low, roomy])
  })

  it('fails the step, naming the input, when every builder is low', () => {
    const results = [result(low)]
    const { builders, passedOver } = passOverLowOnDisk([low], results, 10)
    const outcome: PreflightOutcome = { results, builders, warnings: passedOver }
    expect(() => admitBuilders(outcome, settingsWith({ minFreeGib: 10 }))).toThrow(SetupError)
    expect(() => admitBuilders(outcome, settingsWith({ minFreeGib: 10 }))).toThrow(
      /^Input 'min-free-gib: 10' passed over every builder: nixbuilder@a\.example\.com:22 \(3\.0 GiB free/
    )
  })
})

describe('the summary says why', () => {
  it('lists the builders by free capacity, most first, with their load', () => {
    const a = builderWith({ host: 'a.example.com', load: BUSY })
    const b = builderWith({ host: 'b.example.com', load: IDLE })
    const summary = renderSummary(
      makeReport({ checks: { preflight: [result(a), result(b)], stores: [] } }),
      false
    )
    expect(summary).toContain(
      'Builders by free capacity, cores / (1 + load), most first: `nixbuilder@b.example.com:22` 2.0 (load 0.02, 2 ' +
        'cores, 0 running builds), `nixbuilder@a.example.com:22` 0.3 (load 5.9, 2 cores, 1 running build).'
    )
  })

  it('says nothing of load with one builder', () => {
    const a = builderWith({ host: 'a.example.com', load: BUSY })
    expect(
      renderSummary(makeReport({ checks: { preflight: [result(a)], stores: [] } }), false)
    ).not.toContain('free capacity')
  })
})
