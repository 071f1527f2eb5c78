import { describe, expect, it } from 'vitest'
import { SetupError } from '../../../src/inputs/errors.js'
import type { Settings } from '../../../src/inputs/settings.js'
import { fits } from '../../../src/nix/build.js'
import {
  chooseStrategy,
  type InstallableNeed,
  type RoutedDerivation,
  type RunnerTrust,
  type StoreOffer,
  type StrategyChoice
} from '../../../src/nix/strategy.js'
import { settingsWith } from '../support/settings.js'

const TRUSTED: RunnerTrust = { acceptsUnsignedPaths: true }
const UNTRUSTED: RunnerTrust = { acceptsUnsignedPaths: false }

/** The store URI of the builder configured at `index`, which its route is bound to. */
function storeUriAt(index: number): string {
  return `ssh-ng://nixbuilder@nix-offload-a1b2c3-${index + 1}`
}

function offer(index: number, overrides: Partial<StoreOffer> = {}): StoreOffer {
  return {
    index,
    label: `builder-${index + 1}`,
    protocol: 'ssh-ng',
    storeUri: storeUriAt(index),
    maxJobs: 1,
    systems: ['x86_64-linux'],
    supportedFeatures: [],
    mandatoryFeatures: [],
    ...overrides
  }
}

function need(installable: string, overrides: Partial<InstallableNeed> = {}): InstallableNeed {
  return {
    installable,
    drvPath: `/nix/store/00000000000000000000000000000000-${installable.replace(/\W/g, '-')}.drv`,
    outputs: ['out'],
    system: 'x86_64-linux',
    features: [],
    ...overrides
  }
}

/** What a route builds of `need(installable)`, the `order`-th need. */
function routed(installable: string, order: number): RoutedDerivation {
  const { drvPath, outputs } = need(installable)
  return { drvPath, outputs, order }
}

interface Run {
  settings?: Partial<Settings>
  wantsBuild?: boolean
  runner?: RunnerTrust
  builders?: StoreOffer[]
  needs?: InstallableNeed[] | undefined
  installables?: string[]
}

const HELLO = '.#hello'
const VM_TEST = '.#checks.x86_64-linux.vm'
const ARM = '.#packages.aarch64-linux.hello'

/** chooseStrategy for a run that fits remote-store unless the case overrides it. */
function choose(run: Run = {}): StrategyChoice {
  const installables = run.installables ?? [HELLO]
  return chooseStrategy({
    settings: settingsWith({ strategy: 'auto', ...run.settings }),
    wantsBuild: run.wantsBuild ?? true,
    runner: run.runner ?? TRUSTED,
    builders: run.builders ?? [offer(0)],
    needs: 'needs' in run ? run.needs : installables.map(installable => need(installable)),
    installables
  })
}

function refusal(run: Run): SetupError {
  try {
    choose({ ...run, settings: { ...run.settings, strategy: 'remote-store' } })
  } catch (error) {
    if (error instanceof SetupError) return error
    throw error
  }
  throw new Error('remote-store was not refused')
}

describe('chooseStrategy: the hook, whatever else fits', () => {
  it("takes 'strategy: hook' at its word, even when remote-store would fit", () => {
    expect(choose({ settings: { strategy: 'hook' } })).toEqual({
      strategy: 'hook',
      reason: "'strategy: hook' was asked for",
      routes: []
    })
  })
})

describe('chooseStrategy for a configure-only step (no build)', () => {
  it('picks the hook with auto, because later plain `nix build` steps offload through it', () => {
    const choice = choose({ wantsBuild: false, needs: undefined })
    expect(choice.strategy).toBe('hook')
    expect(choice.reason).toContain('no build was requested')
    expect(choice.reason).toContain('build hook')
  })

  it('refuses an explicit remote-store, naming the input and the fix', () => {
    const error = refusal({ wantsBuild: false, needs: undefined })
    expect(error.message).toMatch(/^Input 'strategy: remote-store' cannot serve this run: /)
    expect(error.message).toContain('no build was requested')
    expect(error.message).toContain("'strategy: hook'")
  })
})

describe('chooseStrategy and the way back to an untrusted runner', () => {
  it('picks the hook with auto when the runner would refuse unsigned outputs and copy-back is on', () => {
    const choice = choose({ runner: UNTRUSTED })
    expect(choice.strategy).toBe('hook')
    expect(choice.reason).toMatch(/^remote-store does not fit: /)
    expect(choice.reason).toContain('does not trust the runner user')
    expect(choice.reason).toContain('trusted-users')
    expect(choice.reason).toContain("'copy-back: false'")
  })

  it('refuses an explicit remote-store there, with both fixes', () => {
    const error = refusal({ runner: UNTRUSTED })
    expect(error.message).toMatch(/^Input 'strategy: remote-store' cannot serve this run: /)
    expect(error.message).toContain('trusted-users')
    expect(error.message).toContain("'copy-back: false'")
  })

  it('picks remote-store for an untrusted runner when nothing comes back (copy-back: false)', () => {
    const choice = choose({ runner: UNTRUSTED, settings: { copyBack: false } })
    expect(choice.strategy).toBe('remote-store')
    expect(choice.routes).toEqual([
      {
        index: 0,
        label: 'builder-1',
        storeUri: storeUriAt(0),
        maxJobs: 1,
        installables: [HELLO],
        derivations: [routed(HELLO, 0)]
      }
    ])
  })
})

describe('chooseStrategy when the installables could not be looked at', () => {
  it('picks the hook with auto, and says so', () => {
    for (const needs of [undefined, []]) {
      const choice = choose({ needs })
      expect(choice.strategy).toBe('hook')
      expect(choice.reason).toContain('could not be looked at')
    }
  })

  it('refuses an explicit remote-store', () => {
    expect(refusal({ needs: undefined }).message).toContain('could not be looked at')
    expect(refusal({ needs: [] }).message).toContain('could not be looked at')
  })
})

describe('chooseStrategy with one builder', () => {
  it('sends every installable, as given, and every derivation they selected, in order, to it when all needs fit', () => {
    // Named by derivation, as when an attribute set selects several (`installableNeeds` in src/nix/strategy.ts).
    const installables = [HELLO, VM_TEST, '.#b']
    const choice = choose({
      builders: [offer(0, { supportedFeatures: ['kvm', 'nixos-test'] })],
      installables,
      needs: [
        need('/nix/store/a-hello.drv'),
        need('/nix/store/b-vm.drv', { features: ['kvm', 'nixos-test'] }),
        need('/nix/store/c-b.drv')
      ]
    })
    expect(choice.strategy).toBe('remote-store')
    const derivations = ['/nix/store/a-hello.drv', '/nix/store/b-vm.drv', '/nix/store/c-b.drv'].map(routed)
    expect(choice.routes).toEqual([
      { index: 0, label: 'builder-1', storeUri: storeUriAt(0), maxJobs: 1, installables, derivations }
    ])
    expect(choice.reason).toContain('every installable goes whole to one builder (builder-1)')
    expect(choice.reason).toContain('only the requested outputs come back')
  })

  it('says an explicit remote-store was asked for, and where it builds', () => {
    const choice = choose({ settings: { strategy: 'remote-store' } })
    expect(choice.strategy).toBe('remote-store')
    expect(choice.reason).toBe("'strategy: remote-store' was asked for; building in the store of builder-1")
  })

  it('picks the hook when one need does not fit, naming the installable, its system and its features', () => {
    const run: Run = {
      installables: [HELLO, VM_TEST],
      needs: [need(HELLO), need(VM_TEST, { features: ['kvm'] })]
    }
    const choice = choose(run)
    expect(choice.strategy).toBe('hook')
    expect(choice.routes).toEqual([])
    expect(choice.reason).toContain(`no single builder offers what ${VM_TEST} needs`)
    expect(choice.reason).toContain('system x86_64-linux, features kvm')
    expect(refusal(run).message).toContain(`no single builder offers what ${VM_TEST} needs`)
  })

  it("respects the builder's mandatory features", () => {
    const builders = [offer(0, { supportedFeatures: ['big-parallel'], mandatoryFeatures: ['big-parallel'] })]
    expect(choose({ builders }).strategy).toBe('hook')
    expect(choose({ builders, needs: [need(HELLO, { features: ['big-parallel'] })] }).strategy).toBe(
      'remote-store'
    )
  })
})

describe('chooseStrategy with several builders', () => {
  const x86 = offer(0, { label: 'x86', supportedFeatures: ['big-parallel'] })
  const arm = offer(1, { label: 'arm', systems: ['aarch64-linux'] })
  const kvm = offer(2, { label: 'kvm', supportedFeatures: ['kvm', 'nixos-test'] })

  it('sends each installable to the first builder that fits its system and features', () => {
    const choice = choose({
      builders: [x86, arm, kvm],
      installables: [HELLO, ARM, VM_TEST, '.#other'],
      needs: [
        need(HELLO),
        need(ARM, { system: 'aarch64-linux' }),
        need(VM_TEST, { features: ['kvm', 'nixos-test'] }),
        need('.#other')
      ]
    })
    expect(choice.strategy).toBe('remote-store')
    expect(choice.routes).toEqual([
      {
        index: 0,
        label: 'x86',
        storeUri: storeUriAt(0),
        maxJobs: 1,
        installables: [HELLO, '.#other'],
        derivations: [routed(HELLO, 0), routed('.#other', 3)]
      },
      {
        index: 1,
        label: 'arm',
        storeUri: storeUriAt(1),
        maxJobs: 1,
        installables: [ARM],
        derivations: [routed(ARM, 1)]
      },
      {
        index: 2,
        label: 'kvm',
        storeUri: storeUriAt(2),
        maxJobs: 1,
        installables: [VM_TEST],
        derivations: [routed(VM_TEST, 2)]
      }
    ])
    expect(choice.reason).toContain('(x86, arm, kvm)')
  })

  it('leaves out builders that get nothing', () => {
    const { routes } = choose({
      builders: [x86, arm, kvm],
      installables: [ARM],
      needs: [need(ARM, { system: 'aarch64-linux' })]
    })
    expect(routes).toEqual([
      {
        index: 1,
        label: 'arm',
        storeUri: storeUriAt(1),
        maxJobs: 1,
        installables: [ARM],
        derivations: [routed(ARM, 0)]
      }
    ])
  })

  it('skips a builder whose mandatory features the installable does not require', () => {
    const heavy = offer(0, {
      label: 'heavy',
      supportedFeatures: ['big-parallel'],
      mandatoryFeatures: ['big-parallel']
    })
    const light = offer(1, { label: 'light' })
    const choice = choose({
      builders: [heavy, light],
      installables: [HELLO, '.#chromium'],
      needs: [need(HELLO), need('.#chromium', { features: ['big-parallel'] })]
    })
    expect(choice.routes).toEqual([
      {
        index: 1,
        label: 'light',
        storeUri: storeUriAt(1),
        maxJobs: 1,
        installables: [HELLO],
        derivations: [routed(HELLO, 0)]
      },
      {
        index: 0,
        label: 'heavy',
        storeUri: storeUriAt(0),
        maxJobs: 1,
        installables: ['.#chromium'],
        derivations: [routed('.#chromium', 1)]
      }
    ])
  })

  it('picks the hook when nobody fits one installable, or refuses an explicit remote-store', () => {
    const run: Run = {
      builders: [x86, arm],
      installables: [HELLO, VM_TEST],
      needs: [need(HELLO), need(VM_TEST, { features: ['kvm'] })]
    }
    const choice = choose(run)
    expect(choice.strategy).toBe('hook')
    expect(choice.routes).toEqual([])
    expect(choice.reason).toMatch(/^remote-store does not fit: no single builder offers what /)
    expect(choice.reason).toContain(`${VM_TEST} needs (system x86_64-linux, features kvm)`)
    const error = refusal(run)
    expect(error.message).toMatch(/^Input 'strategy: remote-store' cannot serve this run: /)
    expect(error.message).toContain(`${VM_TEST} needs (system x86_64-linux, features kvm)`)
  })

  it('names a system nobody offers, without a features clause when none are required', () => {
    const choice = choose({
      builders: [x86, kvm],
      installables: [ARM],
      needs: [need(ARM, { system: 'aarch64-linux' })]
    })
    expect(choice.reason).toContain(`${ARM} needs (system aarch64-linux)`)
  })
})

describe("fits: Nix's rule for sending a derivation to a machine", () => {
  const builder = offer(0, {
    systems: ['x86_64-linux', 'i686-linux'],
    supportedFeatures: ['kvm', 'big-parallel']
  })

  it('needs the system', () => {
    expect(fits(builder, { system: 'i686-linux', features: [] })).toBe(true)
    expect(fits(builder, { system: 'aarch64-linux', features: [] })).toBe(false)
  })

  it('needs every required feature to be supported', () => {
    expect(fits(builder, { system: 'x86_64-linux', features: ['kvm'] })).toBe(true)
    expect(fits(builder, { system: 'x86_64-linux', features: ['kvm', 'big-parallel'] })).toBe(true)
    expect(fits(builder, { system: 'x86_64-linux', features: ['kvm', 'nixos-test'] })).toBe(false)
  })

  it('needs every mandatory feature of the machine to be required', () => {
    const benchmark = { ...builder, supportedFeatures: ['benchmark'], mandatoryFeatures: ['benchmark'] }
    expect(fits(benchmark, { system: 'x86_64-linux', features: [] })).toBe(false)
    expect(fits(benchmark, { system: 'x86_64-linux', features: ['benchmark'] })).toBe(true)
  })

  // Nix's Machine::allSupported (libstore/machines.cc) checks the required features against supportedFeatures *and*
  // mandatoryFeatures, and so does `fits`, which the diagnosis uses too: a machine line whose only feature is
  // a mandatory one ("- benchmark") takes derivations that require it.
  it('counts a mandatory feature as supported, as Nix does', () => {
    const benchmark = { ...builder, supportedFeatures: [], mandatoryFeatures: ['benchmark'] }
    expect(fits(benchmark, { system: 'x86_64-linux', features: ['benchmark'] })).toBe(true)
  })
})

describe('chooseStrategy and the protocol: only an ssh-ng builder builds in its own store', () => {
  it('refuses an explicit remote-store when every builder speaks ssh (nix-store --serve)', () => {
    const message = refusal({ builders: [offer(0, { protocol: 'ssh' })] }).message
    expect(message).toContain("'strategy: remote-store' cannot serve this run: it needs an ssh-ng builder")
    expect(message).toContain("Set 'strategy: hook' (or auto)")
  })

  it('picks the hook with auto, and says why', () => {
    const choice = choose({ builders: [offer(0, { protocol: 'ssh' })] })
    expect(choice.strategy).toBe('hook')
    expect(choice.reason).toContain("speaks only Nix's ssh protocol")
  })

  it('routes to the ssh-ng builder only, when both kinds are configured', () => {
    const choice = choose({ builders: [offer(0, { protocol: 'ssh' }), offer(1)] })
    expect(choice.strategy).toBe('remote-store')
    expect(choice.routes.map(route => route.label)).toEqual(['builder-2'])
  })
})
