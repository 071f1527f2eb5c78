import { isRecord, runCommand, safeLine } from '../base/index.js'
import { type BuilderAccess, type BuilderLoad, Input, type Protocol } from '../inputs/index.js'
import { byFreeCapacity, SetupError, type Settings } from '../inputs/index.js'
import { copyBackRefused, fits, forEvaluation, type MachineOffer } from './build.js'
import {
  compareVersions,
  derivationShowArgs,
  NIX_FEATURES,
  type NixRelease,
  parseDerivationShow,
  type ShownDerivation
} from './nix-cli.js'
import { DEFAULT_STORE_DIR, isStorePath, storeDirOf } from './nix-log.js'

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

/** What one derivation an installable selected needs (`nix derivation show`), and which of its outputs it selected. */
export interface InstallableNeed extends SelectedOutputs {
  /** The installable that selected it, or its path where that is not known. */
  installable: string
  system: string
  features: string[]
}

/** A derivation a route builds, with its place among all the installables selected, for out-links numbered as Nix does. */
export interface RoutedDerivation extends SelectedOutputs {
  order: number
}

/** What one healthy builder offers; `index` is its place in the builders the plan configures. */
export interface StoreOffer extends MachineOffer {
  index: number
  label: string
  /** Only an ssh-ng builder's store can build: `nix-store --serve` (ssh) only copies and builds one derivation. */
  protocol: Protocol
  /** Its store, max-jobs and what its key may run there, which its route is bound to (see StoreRoute). */
  storeUri: string
  maxJobs: number
  access?: BuilderAccess
  /** How busy the preflight found it: the one with the most free capacity is tried first. */
  load?: BuilderLoad
}

/** The installables one builder's store builds, in the order given. */
export interface StoreRoute {
  index: number
  label: string
  storeUri: string
  installables: string[]
  /** What the routing evaluation selected of them: the build names these, so it evaluates nothing again. */
  derivations: RoutedDerivation[]
  /** What the builder's key may run there (the preflight's finding); unset: a shell. */
  access?: BuilderAccess
  /** The builder's max-jobs: the `-j` its store builds with. */
  maxJobs?: number
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

/** What the strategy is chosen from. */
export interface StrategyQuestion {
  settings: Pick<Settings, 'strategy' | 'copyBack'>
  wantsBuild: boolean
  runner: RunnerTrust
  builders: StoreOffer[]
  /** Undefined when the installables were not looked at (no build, or `hook` asked for). */
  needs: InstallableNeed[] | undefined
  installables: string[]
  /** Why `needs` is missing or empty, for the reason. */
  needsProblem?: string
}

/**
 * Picks the strategy. An explicit `remote-store` that cannot serve the run is an error that says why; `auto` falls
 * back to `hook`.
 */
export function chooseStrategy(question: StrategyQuestion): StrategyChoice {
  const { settings, builders, needs, installables } = question
  const explicit = settings.strategy === 'remote-store'
  const obstacle = remoteStoreObstacle(settings, {
    wantsBuild: question.wantsBuild,
    runner: question.runner,
    lookup: { needs, problem: question.needsProblem ?? NO_LOOKUP },
    builders
  })
  if (obstacle !== undefined) return declined(obstacle, explicit)
  // Never empty here: the obstacle says so.
  const routing = routeNeeds(needs ?? [], builders, installables)
  if (!Array.isArray(routing)) return declined(routing, explicit)
  const where = routing.map(route => route.label).join(', ')
  return {
    strategy: 'remote-store',
    reason: explicit
      ? `'${Input.Strategy}: remote-store' was asked for; building in the store of ${where}`
      : `every installable goes whole to one builder (${where}), so the build runs in that builder's store: one ` +
        'session per build, and only the requested outputs come back',
    routes: routing
  }
}

const NO_LOOKUP = 'the installables could not be looked at to route them to a builder'

/** Why remote-store cannot serve a run: the hook's reason for the log, and the error an explicit remote-store gets. */
export interface StoreObstacle {
  reason: string
  /** Unset where asking for remote-store is no error (`strategy: hook`). */
  refusal?: string
}

/** What is known of a run when asking whether remote-store may serve it; a fact not known yet refuses nothing. */
export interface RunSoFar {
  wantsBuild: boolean
  runner?: RunnerTrust
  lookup?: { needs: InstallableNeed[] | undefined; problem: string }
  builders?: Pick<StoreOffer, 'label' | 'protocol'>[]
}

/**
 * The one answer to "may remote-store serve this run?": undefined when it may, as far as `known` tells, else why not.
 * Asked with the step's start (the speculative configuration), once the runner is probed, and by chooseStrategy.
 */
export function remoteStoreObstacle(
  settings: Pick<Settings, 'strategy' | 'copyBack'>,
  known: RunSoFar
): StoreObstacle | undefined {
  if (settings.strategy === 'hook') return { reason: `'${Input.Strategy}: hook' was asked for` }
  if (!known.wantsBuild) {
    return {
      reason: "no build was requested: later steps' `nix build` offloads through Nix's build hook",
      refusal:
        `no build was requested, and later steps' plain \`nix build\` can only offload through Nix's build hook. ` +
        `Set '${Input.Strategy}: hook' (or auto) for a configure-only step.`
    }
  }
  const refused = copyBackRefused(settings, known.runner)
  if (refused !== undefined) return doesNotFit(refused)
  const { lookup, builders = [] } = known
  if (lookup !== undefined && (lookup.needs === undefined || lookup.needs.length === 0)) {
    return doesNotFit(lookup.problem)
  }
  if (builders.length > 0 && !builders.some(builder => builder.protocol === 'ssh-ng')) {
    return doesNotFit(
      `it needs an ssh-ng builder (the builder's own nix-daemon builds the graph), and ${builders.map(b => b.label).join(', ')} ` +
        `speak${builders.length === 1 ? 's' : ''} only Nix's ssh protocol (nix-store --serve). Set '${Input.Strategy}: hook' ` +
        `(or auto), or '${Input.Protocol}: ssh-ng' where the builder runs nix-daemon`
    )
  }
  return undefined
}

function doesNotFit(why: string): StoreObstacle {
  return { reason: `remote-store does not fit: ${why}`, refusal: why }
}

/** The hook, for the obstacle's reason; or, when remote-store was asked for and the obstacle refuses it, the error. */
function declined(obstacle: StoreObstacle, explicit: boolean): StrategyChoice {
  if (explicit && obstacle.refusal !== undefined) {
    throw new SetupError(
      `Input '${Input.Strategy}: remote-store' cannot serve this run: ${obstacle.refusal}`,
      `input ${Input.Strategy}`
    )
  }
  return { strategy: 'hook', reason: obstacle.reason, routes: [] }
}

/**
 * Each installable's route: of the ssh-ng builders that fit what it needs, the one with the most free capacity, the
 * given order deciding a tie. With one builder every installable goes there (`needs` then comes from one evaluation
 * of them all). An obstacle when one fits no builder.
 */
function routeNeeds(
  needs: InstallableNeed[],
  builders: StoreOffer[],
  installables: string[]
): StoreRoute[] | StoreObstacle {
  const stores = byFreeCapacity(builders.filter(builder => builder.protocol === 'ssh-ng'))
  const routes = new Map<number, StoreRoute>()
  const only = stores.length === 1 && builders.length === 1 ? stores[0] : undefined
  for (const [order, need] of needs.entries()) {
    const builder = stores.find(candidate => fits(candidate, need))
    if (builder === undefined) return unroutable(need)
    if (only !== undefined) continue
    const route = routes.get(builder.index) ?? emptyRoute(builder, [])
    if (!route.installables.includes(need.installable)) route.installables.push(need.installable)
    route.derivations.push(routed(need, order))
    routes.set(builder.index, route)
  }
  if (only !== undefined)
    routes.set(only.index, { ...emptyRoute(only, installables), derivations: needs.map(routed) })
  return [...routes.values()]
}

/** The route to `builder`'s store, bound to it: its store URI, its max-jobs, and what its key may run there. */
export function emptyRoute(builder: StoreOffer, installables: string[]): StoreRoute {
  const { index, label, storeUri, maxJobs, access } = builder
  const route: StoreRoute = { index, label, storeUri, maxJobs, installables, derivations: [] }
  if (access !== undefined) route.access = access
  return route
}

function unroutable(need: InstallableNeed): StoreObstacle {
  // The system and features are the evaluation's: any text at all.
  const features = need.features.map(safeLine).join(', ')
  return doesNotFit(
    `no single builder offers what ${safeLine(need.installable)} needs (system ${safeLine(need.system)}` +
      `${features !== '' ? `, features ${features}` : ''}), so its graph cannot go whole to one builder`
  )
}

function routed({ drvPath, outputs }: InstallableNeed, order: number): RoutedDerivation {
  return { drvPath, outputs, order }
}

/*
 * What an installable names once evaluated: a derivation and the outputs selected from it (Nix's `DerivedPath::Built`),
 * as `nix build --dry-run --json` prints them, and how each Nix takes them back on its command line, so that a build
 * from them evaluates nothing again.
 */

/** One derivation and the outputs an installable selected from it. */
export interface SelectedOutputs {
  drvPath: string
  /** Output names, never empty. */
  outputs: string[]
}

/** An output's name as Nix allows it: the characters of a store path's name, so it is safe in a Nix string. */
const OUTPUT_NAME = /^(?!\.)[A-Za-z0-9+\-._?=]{1,211}$/

/**
 * Reads `nix build --dry-run --json`: `[{"drvPath": …, "outputs": {"out": "/nix/store/…", …}}]` in the installables'
 * order, each entry one derivation with exactly the outputs `nix build` would build of it (the same shape from 2.8 to
 * 2.34; an output's path is null while a content-addressed derivation has none). Entries that are not a derivation in
 * `storeDir` with well-formed output names are left out: they reach a command line next. Undefined for anything
 * that is not such a list.
 */
export function parseDryRun(stdout: string, storeDir = DEFAULT_STORE_DIR): SelectedOutputs[] | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(stdout)
  } catch {
    return undefined
  }
  if (!Array.isArray(parsed)) return undefined
  return parsed.flatMap((entry: unknown): SelectedOutputs[] => {
    if (!isRecord(entry) || !isRecord(entry.outputs) || typeof entry.drvPath !== 'string') return []
    const { drvPath } = entry
    const outputs = Object.keys(entry.outputs)
    const valid =
      drvPath.endsWith('.drv') &&
      isStorePath(drvPath, storeDir) &&
      outputs.length > 0 &&
      outputs.every(output => OUTPUT_NAME.test(output))
    return valid ? [{ drvPath, outputs }] : []
  })
}

/**
 * The command-line tail that builds exactly `selected`, one installable per entry in their order (so out-links are
 * numbered as a build of the original installables numbers them), without evaluating them again.
 *
 * Nix 2.13 and later, and every Lix (forked from 2.18), parse `<drv>^<output>,…` as an installable (2.13's release
 * notes; ExtendedOutputsSpec in installables.cc) and only parse the path, so the .drv needs to exist only in the eval
 * store, whence the building store's buildPaths copies it.
 * Up to 2.12 a store path installable has no output selector (`!` is the separator of `nix-store -r` and of
 * DerivedPath::to_string only), and a bare `.drv` is read from the building store, where it is not yet: an `--expr`
 * of derivation-shaped attribute sets naming the .drv does it instead. Its evaluation reads no file; 2.8 selects by
 * `outputName`, 2.9–2.12 by `outputs`, so each set has both, one set per output, and Nix groups them by derivation.
 */
export function derivedPathArgs(release: NixRelease, selected: SelectedOutputs[]): string[] {
  const caret = release.implementation === 'lix' || compareVersions(release.version, '2.13') >= 0
  if (caret) {
    return selected.map(({ drvPath, outputs }) => `${drvPath}^${outputs.join(',')}`)
  }
  const entry = ({ drvPath, outputs }: SelectedOutputs): string => {
    const name = drvPath.replace(/^.*\/[^-/]*-/, '').replace(/\.drv$/, '')
    const sets = outputs.map(
      output =>
        `{ type = "derivation"; name = "${name}"; drvPath = "${drvPath}"; ` +
        `outputName = "${output}"; outputs = [ "${output}" ]; }`
    )
    return `[ ${sets.join(' ')} ]`
  }
  return ['--expr', `[ ${selected.map(entry).join(' ')} ]`, ...selected.map((_, index) => String(index))]
}

/*
 * The remote-store strategy's evaluation, on the runner, beside the preflight: it says where each installable can be
 * built (chooseStrategy), and what the build in a builder's store then names (store-build.ts).
 */

/** What the installables need, or why they could not be looked at. */
export interface InstallableLookup {
  needs?: InstallableNeed[]
  /** Why not, for the strategy's reason. */
  problem?: string
}

/**
 * What each installable needs, from the derivations and outputs one evaluation on the runner selects
 * (`nix build --dry-run --json`), which the build then names instead of the installables, so it evaluates nothing
 * again. Nothing may be built on the runner meanwhile (`--max-jobs 0`, no builders): an expression that imports from
 * a derivation (IFD) would otherwise have it built here, unseen, and with the build hook that derivation is offloaded
 * like any other. The derivations' systems and features come from reading them, which evaluates nothing.
 */
export async function installableNeeds(
  release: NixRelease,
  settings: Settings,
  env: NodeJS.ProcessEnv
): Promise<InstallableLookup> {
  const evaluated = await runCommand('nix', evaluationArguments(settings), {
    env,
    timeoutMs: EVALUATION_TIMEOUT_MS
  })
  if (evaluated.code !== 0) return { problem: evaluationProblem(evaluated.stderr) }
  const selected = parseDryRun(evaluated.stdout.toString(), storeDirOf(env))
  if (selected === undefined || selected.length === 0) return { problem: 'they name no derivation to build' }
  const shown = await runCommand(
    'nix',
    [...NIX_FEATURES, ...derivationShowArgs(release), ...derivedPathArgs(release, selected)],
    { env, timeoutMs: EVALUATION_TIMEOUT_MS }
  )
  let drvs: ShownDerivation[] = []
  try {
    drvs = shown.code === 0 ? parseDerivationShow(shown.stdout.toString(), storeDirOf(env)) : []
  } catch {
    // Said below, as for a derivation it did not show.
  }
  const needs: InstallableNeed[] = []
  // One entry per installable when they are as many (the usual case); an attribute set given by `-f` or `--expr`
  // may select several derivations, which are then named by their paths.
  const named = selected.length === settings.installables.length
  for (const [index, { drvPath, outputs }] of selected.entries()) {
    const drv = drvs.find(candidate => candidate.drvPath === drvPath)
    if (drv === undefined) return { problem: `their derivation ${drvPath} could not be read` }
    const installable = (named ? settings.installables[index] : undefined) ?? drvPath
    needs.push({ installable, drvPath, outputs, system: drv.system, features: drv.features })
  }
  return { needs }
}

/**
 * The one evaluation: `nix build --dry-run --json` evaluates as `nix build` does, with only the evaluation's options
 * of `args`, and prints each derivation with exactly the outputs the installables select (a flake's
 * `outputsToInstall`, `.dev`, `^out`), which `nix derivation show` cannot say.
 */
export function evaluationArguments(settings: Pick<Settings, 'args' | 'installables'>): string[] {
  return [
    ...NIX_FEATURES,
    'build',
    ...forEvaluation(settings.args),
    // After the user's `args`: a later duplicate cannot let it build.
    '--dry-run',
    '--json',
    '--max-jobs',
    '0',
    '--builders',
    '',
    ...settings.installables
  ]
}

function evaluationProblem(stderr: string): string {
  return /local builds are disabled|unable to start any build|required to build/i.test(stderr)
    ? 'evaluating them needs a derivation built first (import-from-derivation), which the runner would build ' +
        'itself; the build hook offloads it'
    : `evaluating them failed (${safeLine(stderr.trim().split('\n').at(-1) ?? 'no message')})`
}

/**
 * An evaluation's bound: it may fetch the flake's inputs (a nixpkgs tarball) and evaluate a whole system, which can
 * rightly take minutes, but it builds nothing.
 */
export const EVALUATION_TIMEOUT_MS = 10 * 60_000
