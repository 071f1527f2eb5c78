import { describe, expect, it } from 'vitest'
import {
  describeRelease,
  multiplexHazard,
  type NixRelease,
  parseNixVersion
} from '../../../src/nix/nix-cli.js'
import { configureBuilders } from '../../../src/inputs/index.js'
import { makePlan, settingsForRunner } from '../../../src/runner/plan.js'
import { type RunnerFacts, runnerRelease } from '../../../src/runner/probe.js'
import { runnerFactsWith } from '../support/runner.js'
import { builderWith, settingsWith } from '../support/settings.js'

const nix = (version: string): NixRelease => ({ implementation: 'nix', version })
const lix = (version: string): NixRelease => ({ implementation: 'lix', version })
const determinate = (own: string, version: string): NixRelease => ({
  implementation: 'nix',
  version,
  determinate: own
})

describe('multiplexHazard', () => {
  it('flags Nix 2.15.x, which waits for a "started" that a session through a master never prints', () => {
    for (const version of ['2.15', '2.15.0', '2.15.3']) {
      expect(multiplexHazard(nix(version))?.bug).toBe('NixOS/nix#8329')
    }
    expect(multiplexHazard(nix('2.15.1'))?.fixedIn).toBe('Nix 2.16.0')
  })

  it('passes upstream Nix before 2.15 and from 2.16, the build hook path the lab multiplexes on', () => {
    for (const version of ['2.8.0', '2.14.1', '2.16.0', '2.18.2', '2.26.3', '2.28.5', '2.34.8', '2.35.2']) {
      expect(multiplexHazard(nix(version))).toBeUndefined()
    }
  })

  it('flags Determinate Nix 3.11.0 to 3.21.x by its own version (64 connections, its own master)', () => {
    for (const [own, version] of [
      ['3.11.0', '2.31.1'],
      ['3.19.0', '2.34.6'],
      ['3.21.1', '2.34.7'],
      ['3.21.9', '2.34.8']
    ] as const) {
      const hazard = multiplexHazard(determinate(own, version))
      expect(hazard?.bug).toBe('DeterminateSystems/nix-src#441')
      expect(hazard?.reason).toContain("protocol mismatch, got 'started'")
      expect(hazard?.fixedIn).toBe('Determinate Nix 3.22.0')
    }
  })

  it('passes Determinate Nix before 3.11.0 (one connection, as upstream) and from 3.22.0 (nix-src#569)', () => {
    expect(multiplexHazard(determinate('3.10.1', '2.31.0'))).toBeUndefined()
    expect(multiplexHazard(determinate('3.6.2', '2.29.0'))).toBeUndefined()
    expect(multiplexHazard(determinate('3.22.0', '2.35.1'))).toBeUndefined()
    expect(multiplexHazard(determinate('3.22.2', '2.35.2'))).toBeUndefined()
  })

  it('judges Determinate Nix by its own number, not by the Nix version it carries', () => {
    expect(multiplexHazard(nix('2.34.6'))).toBeUndefined()
    expect(multiplexHazard(parseNixVersion('nix (Determinate Nix 3.19.0) 2.34.6'))?.bug).toBe(
      'DeterminateSystems/nix-src#441'
    )
  })

  it('passes every Lix, and a version it cannot read', () => {
    for (const version of ['2.90', '2.92.0', '2.93.0', '2.95.3']) {
      expect(multiplexHazard(lix(version))).toBeUndefined()
    }
    expect(multiplexHazard(nix(''))).toBeUndefined()
    expect(multiplexHazard(nix('unknown'))).toBeUndefined()
  })
})

describe('describeRelease', () => {
  it('names the implementation and both numbers of Determinate Nix', () => {
    expect(describeRelease(nix('2.15.3'))).toBe('Nix 2.15.3')
    expect(describeRelease(determinate('3.19.0', '2.34.6'))).toBe('Determinate Nix 3.19.0 (Nix 2.34.6)')
    expect(describeRelease(lix('2.93.0'))).toBe('Lix 2.93.0')
  })
})

const BUILDER = builderWith({ maxJobs: 2 })

const RUNNER = runnerFactsWith()

const DETERMINATE_3_19: RunnerFacts = { ...RUNNER, nixVersion: '2.34.6', determinateVersion: '3.19.0' }
const NIX_2_15: RunnerFacts = { ...RUNNER, nixVersion: '2.15.3' }

function sshConfigOf(facts: RunnerFacts, multiplex: boolean): string {
  const { settings } = settingsForRunner(settingsWith({ builders: [BUILDER], multiplex }), facts)
  const plan = makePlan(settings, configureBuilders([BUILDER], 'a1b2c3'), facts, 'a1b2c3')
  const step = plan.steps.find(candidate => candidate.kind === 'block')
  if (step === undefined || step.kind !== 'block') throw new Error('the plan writes no ssh config')
  return step.content
}

describe('runnerRelease', () => {
  it("carries Determinate Nix's own version from the runner facts", () => {
    expect(runnerRelease(DETERMINATE_3_19)).toEqual(determinate('3.19.0', '2.34.6'))
    expect(runnerRelease(RUNNER)).toEqual(nix('2.34.8'))
  })
})

describe('settingsForRunner', () => {
  it('keeps multiplexing, and the very settings object, on a runner whose Nix shares connections safely', () => {
    const given = settingsWith({ builders: [BUILDER] })
    const decided = settingsForRunner(given, RUNNER)
    expect(decided.settings).toBe(given)
    expect(decided.notice).toBeUndefined()
    expect(sshConfigOf(RUNNER, true)).toContain('  ControlMaster auto')
  })

  it('turns multiplexing off on Determinate Nix 3.19.0, in a new settings object, with a notice naming the bug', () => {
    const given = settingsWith({ builders: [BUILDER] })
    const decided = settingsForRunner(given, DETERMINATE_3_19)
    expect(given.multiplex).toBe(true)
    expect(decided.settings).not.toBe(given)
    expect(decided.settings).toEqual({ ...given, multiplex: false })
    expect(decided.notice).toBe(
      "'multiplex' is turned off for this run: the runner's Determinate Nix 3.19.0 (Nix 2.34.6) fails with " +
        '"protocol mismatch, got \'started\'" on ssh-ng builders when an SSH master already runs for the builder ' +
        '(DeterminateSystems/nix-src#441, fixed in Determinate Nix 3.22.0). Builds still offload, each over its ' +
        "own SSH connection. Set 'multiplex: false' to silence this notice."
    )
  })

  it('turns multiplexing off on Nix 2.15, naming the version and NixOS/nix#8329', () => {
    const { notice } = settingsForRunner(settingsWith({ builders: [BUILDER] }), NIX_2_15)
    expect(notice).toContain("'multiplex' is turned off for this run")
    expect(notice).toContain('Nix 2.15.3')
    expect(notice).toContain('NixOS/nix#8329')
  })

  it('writes no ControlMaster, ControlPath or ControlPersist and closes no masters for an unsafe runner', () => {
    for (const facts of [DETERMINATE_3_19, NIX_2_15]) {
      const config = sshConfigOf(facts, true)
      expect(config).toContain('Host nix-offload-a1b2c3-1')
      expect(config).not.toMatch(/ControlMaster auto|ControlPersist/)
      expect(config).toContain('  ControlMaster no\n  ControlPath none')
      const { settings } = settingsForRunner(settingsWith({ builders: [BUILDER] }), facts)
      const plan = makePlan(settings, configureBuilders([BUILDER], 'a1b2c3'), facts, 'a1b2c3')
      expect(plan.steps.some(step => step.kind === 'ssh-masters')).toBe(false)
    }
  })

  it('says nothing when multiplexing is already off', () => {
    const given = settingsWith({ builders: [BUILDER], multiplex: false })
    expect(settingsForRunner(given, DETERMINATE_3_19)).toEqual({ settings: given })
    expect(sshConfigOf(DETERMINATE_3_19, false)).not.toMatch(/ControlMaster auto/)
  })
})
