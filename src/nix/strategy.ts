import { safeLine } from '../base/index.js'
import { type BuilderAccess, Input, type Protocol, SetupError, type Settings } from '../inputs/index.js'

/**
 * How the build reaches the builders (input `strategy`):
 * - `hook`: Nix's distributed builds. The runner's nix-daemon (or `nix`, single-user) hands derivations one at a time
 *   to the build hook, which opens an ssh-ng session per derivation and copies every output back. The only way for
 *   configure-only runs (later steps' plain `nix build`), for an untrusted runner user, and for one graph spread over
 *   several builders.
 * - `remote-store`: the runner's own `nix copy --from ssh-ng://… --eval-store auto` (Nix 2.25+; before, `nix build
 *   --store` and then `nix copy --from`) evaluates on the runner, copies the derivations (and inputs only the runner
 *   has) to one builder, and that builder's daemon builds the whole graph with its own max-jobs: one session per
 *   build, and only the requested outputs come back (store-build.ts).
 */
export type ChosenStrategy = 'hook' | 'remote-store'

/** What one installable needs, from its derivation (`nix derivation show`). */
export interface InstallableNeed {
  installable: string
  drvPath: string
  system: string
  features: string[]
}

/** What one healthy builder offers; `index` is its place in the builders the plan configures. */
export interface StoreOffer {
  index: number
  label: string
  /** Only an ssh-ng builder's store can build: `nix-store --serve` (ssh) only copies and builds one derivation. */
  protocol: Protocol
  systems: string[]
  supportedFeatures: string[]
  mandatoryFeatures: string[]
}

/** The installables one builder's store builds, in the order given; `storeUri` once the plan has named it. */
export interface StoreRoute {
  index: number
  label: string
  storeUri: string
  installables: string[]
  /** What the builder's key may run there (the preflight's finding); unset: a shell. */
  access?: BuilderAccess
}

export interface StrategyChoice {
  strategy: ChosenStrategy
  /** Why, for the log: one sentence. */
  reason: string
  /** remote-store: which builder builds which installables. */
  routes: StoreRoute[]
}

/** What the choice needs to know about the runner. */
export interface RunnerTrust {
  /** The runner's store takes unsigned paths from this user: a trusted user of the daemon, or single-user. */
  acceptsUnsignedPaths: boolean
}

/**
 * Picks the strategy. `needs` is undefined when the installables were not looked at (no build, or `hook` asked for).
 * An explicit `remote-store` that cannot serve the run is an error that says why; `auto` falls back to `hook`.
 */
export function chooseStrategy(
  settings: Pick<Settings, 'strategy' | 'copyBack' | 'mode'>,
  wantsBuild: boolean,
  runner: RunnerTrust,
  builders: StoreOffer[],
  needs: InstallableNeed[] | undefined,
  installables: string[],
  needsProblem = 'the installables could not be looked at to route them to a builder'
): StrategyChoice {
  const hook = (reason: string): StrategyChoice => ({ strategy: 'hook', reason, routes: [] })
  const refuse = (why: string): never => {
    throw new SetupError(`Input '${Input.Strategy}: remote-store' cannot serve this run: ${why}`)
  }
  const explicit = settings.strategy === 'remote-store'
  if (settings.strategy === 'hook') return hook(`'${Input.Strategy}: hook' was asked for`)
  if (settings.mode === 'canary') return hook('the canary checks each builder through the build hook')
  if (!wantsBuild) {
    if (explicit) {
      refuse(
        `no build was requested, and later steps' plain \`nix build\` can only offload through Nix's build hook. ` +
          `Set '${Input.Strategy}: hook' (or auto) for a configure-only step.`
      )
    }
    return hook("no build was requested: later steps' `nix build` offloads through Nix's build hook")
  }
  if (settings.copyBack && !runner.acceptsUnsignedPaths) {
    const why =
      "the runner's nix-daemon does not trust the runner user, so it would refuse the builder's unsigned outputs on " +
      `the way back. Add the runner user to trusted-users, or set '${Input.CopyBack}: false' to leave them on the builder.`
    if (explicit) refuse(why)
    return hook(`remote-store does not fit: ${why}`)
  }
  if (needs === undefined || needs.length === 0) {
    const why = needsProblem
    if (explicit) refuse(why)
    return hook(`remote-store does not fit: ${why}`)
  }
  const stores = builders.filter(builder => builder.protocol === 'ssh-ng')
  if (stores.length === 0 && builders.length > 0) {
    const why =
      `it needs an ssh-ng builder (the builder's own nix-daemon builds the graph), and ${builders.map(b => b.label).join(', ')} ` +
      `speak${builders.length === 1 ? 's' : ''} only Nix's ssh protocol (nix-store --serve). Set '${Input.Strategy}: hook' ` +
      `(or auto), or '${Input.Protocol}: ssh-ng' where the builder runs nix-daemon`
    if (explicit) refuse(why)
    return hook(`remote-store does not fit: ${why}`)
  }
  const routes = new Map<number, StoreRoute>()
  // With one builder every installable goes there (`needs` then comes from one evaluation of them all).
  const only = stores.length === 1 && builders.length === 1 ? stores[0] : undefined
  for (const need of needs) {
    const builder = stores.find(candidate => fits(candidate, need))
    if (builder === undefined) {
      // The system and features are the evaluation's: any text at all.
      const features = need.features.map(safeLine).join(', ')
      const why =
        `no single builder offers what ${safeLine(need.installable)} needs (system ${safeLine(need.system)}` +
        `${features !== '' ? `, features ${features}` : ''}), so its graph cannot go whole to one builder`
      if (explicit) refuse(why)
      return hook(`remote-store does not fit: ${why}`)
    }
    if (only !== undefined) continue
    const route = routes.get(builder.index) ?? {
      index: builder.index,
      label: builder.label,
      storeUri: '',
      installables: []
    }
    route.installables.push(need.installable)
    routes.set(builder.index, route)
  }
  if (only !== undefined) {
    routes.set(only.index, { index: only.index, label: only.label, storeUri: '', installables })
  }
  const where = [...routes.values()].map(route => route.label).join(', ')
  return {
    strategy: 'remote-store',
    reason: explicit
      ? `'${Input.Strategy}: remote-store' was asked for; building in the store of ${where}`
      : `every installable goes whole to one builder (${where}), so the build runs in that builder's store: one ` +
        'session per build, and only the requested outputs come back',
    routes: [...routes.values()]
  }
}

/** Nix's own rule for sending a derivation to a machine (build-remote.cc): system, all required and mandatory features. */
export function fits(builder: StoreOffer, need: Pick<InstallableNeed, 'system' | 'features'>): boolean {
  return (
    builder.systems.includes(need.system) &&
    // A mandatory feature counts as supported (Machine::allSupported).
    need.features.every(
      feature => builder.supportedFeatures.includes(feature) || builder.mandatoryFeatures.includes(feature)
    ) &&
    builder.mandatoryFeatures.every(feature => need.features.includes(feature))
  )
}
