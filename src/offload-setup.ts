import { publish } from './publish.js'
import { buildOnRunner, runnerEntry } from './fallback.js'
import { type SpeculativeConfiguration, tempDirectory } from './speculative.js'
import { logInfo, logWarning, phase } from './base/index.js'
import { admitBuilders, type PreflightOutcome } from './builders/index.js'
import {
  type ConfiguredBuilder,
  configureBuilders,
  Input,
  label,
  type Settings,
  SetupError,
  wantsBuild
} from './inputs/index.js'
import {
  checksOnlyLocally,
  chooseEvaluatingBuilder,
  type ChosenStrategy,
  chooseStrategy,
  type InstallableLookup,
  installableNeeds,
  remoteStoreObstacle,
  type RunnerTrust,
  type StrategyChoice
} from './nix/index.js'
import { type Checks, makeReport } from './report/index.js'
import {
  exportNixConfig,
  type Journal,
  makePlan,
  makeStorePlan,
  type Plan,
  type RunnerFacts,
  runnerRelease,
  type SshMasters
} from './runner/index.js'

/** What every phase of a build-mode run starts from. */
export interface OffloadStep {
  facts: RunnerFacts
  settings: Settings
  /** This job's token, which names everything it writes. */
  token: string
  speculation: SpeculativeConfiguration
}

/** What was started before the preflight's verdict: the strategy when it is sure, and the installables' lookup. */
export interface EarlyStart {
  decided: StrategyChoice | undefined
  needing: Promise<InstallableLookup>
}

/**
 * Starts what need not wait for the preflight. The strategy waits for the builders and for what the installables need
 * (evaluated now, beside the preflight), unless it is the hook for sure; only then may the hook's configuration start
 * before the preflight's verdict.
 */
export async function startEarly(step: OffloadStep): Promise<EarlyStart> {
  const { facts, settings } = step
  const hookForSure = remoteStoreObstacle(settings, { wantsBuild: wantsBuild(settings) }) !== undefined
  // Decided now when it needs neither the builders nor the installables: an explicit remote-store that cannot serve
  // the run fails here, before anything is written.
  const decided = hookForSure
    ? chooseStrategy({
        settings,
        wantsBuild: wantsBuild(settings),
        runner: trustOf(facts),
        builders: [],
        needs: undefined,
        installables: settings.installables
      })
    : undefined
  if (decided !== undefined) checkRebuild(facts, settings, decided.strategy)
  // With `evaluate: builder` the runner evaluates nothing: the builder's own `nix build` does.
  const needing: Promise<InstallableLookup> =
    hookForSure || settings.evaluate === 'builder'
      ? Promise.resolve({})
      : phase('installables', installableNeeds(runnerRelease(facts), settings, process.env))
  needing.catch(() => undefined)
  await step.speculation.onceProbed({ ...step, hookForSure, runner: trustOf(facts) })
  return { decided, needing }
}

/** The builders the preflight admitted, each configured once for this run, and the checks every report shows. */
export interface Admitted {
  builders: ConfiguredBuilder[]
  checks: Checks
}

/**
 * Waits for the preflight's verdict. A refusal undoes what was configured early and fails the step, or, with
 * `fallback: local` and no builder left, builds on the runner instead (undefined).
 */
export async function admit(options: {
  step: OffloadStep
  checking: Promise<PreflightOutcome>
}): Promise<Admitted | undefined> {
  const { facts, settings, speculation } = options.step
  const checked = await options.checking
  const checks: Checks = { runner: runnerEntry(facts), preflight: checked.results, stores: [] }
  try {
    admitBuilders(checked, settings)
  } catch (error) {
    await speculation.abandon()
    if (settings.fallback === 'local' && checked.builders.length === 0) {
      const first = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error)
      await buildOnRunner(facts, settings, `every builder failed its preflight (${first})`, checks)
      return undefined
    }
    await publish(makeReport({ checks }), settings, false)
    throw error
  }
  return { builders: configureBuilders(checked.builders, options.step.token), checks }
}

/** The strategy, and where each installable builds; refused before anything of the run's own is left. */
export async function choose(options: {
  step: OffloadStep
  early: EarlyStart
  builders: ConfiguredBuilder[]
}): Promise<StrategyChoice> {
  const { facts, settings, speculation } = options.step
  const { decided } = options.early
  try {
    const lookup = await options.early.needing
    const offers = options.builders.map((builder, index) => ({ index, label: label(builder), ...builder }))
    const choice =
      decided ??
      (settings.evaluate === 'builder'
        ? chooseEvaluatingBuilder(settings, trustOf(facts), offers)
        : chooseStrategy({
            settings,
            wantsBuild: true,
            runner: trustOf(facts),
            builders: offers,
            needs: lookup.needs,
            installables: settings.installables,
            needsProblem: lookup.problem
          }))
    logInfo(`Strategy: ${choice.strategy}: ${choice.reason}.`)
    if (decided === undefined) checkRebuild(facts, settings, choice.strategy)
    return choice
  } catch (error) {
    await speculation.abandon()
    throw error
  }
}

/** The runner as configured for the build, the journal that undoes it, and the SSH masters its store check opened. */
export interface Configured {
  plan: Plan
  journal: Journal
  masters: SshMasters
}

/** Configures the runner for the strategy (or keeps what was configured early), and checks every builder's store. */
export async function configure(options: {
  step: OffloadStep
  choice: StrategyChoice
  builders: ConfiguredBuilder[]
  checks: Checks
}): Promise<Configured> {
  const { facts, settings, token, speculation } = options.step
  const { choice, builders, checks } = options
  const plan =
    choice.strategy === 'remote-store'
      ? makeStorePlan(settings, builders, token, tempDirectory())
      : (speculation.hookPlan ?? makePlan(settings, builders, facts, token))
  const { stores, journal, masters } = await speculation.configure({ plan, choice, builders, facts })
  exportNixConfig(plan)
  checks.stores = stores
  const unreachable = stores.filter(store => !store.ok)
  if (unreachable.length > 0) {
    await publish(makeReport({ plan, checks }), settings, false)
    const who = plan.asRoot ? 'root (the account the nix-daemon connects as)' : facts.userName
    throw new SetupError(
      unreachable
        .map(
          store =>
            `Builder ${store.builder} passed the preflight, but \`${store.command}\` as ${who} ` +
            `failed: ${store.error ?? 'no output'}`
        )
        .join('\n'),
      'builder store'
    )
  }
  return { plan, journal, masters }
}

/**
 * `rebuild` passes `--rebuild`, a check build. Nix 2.34+ never offloads one, so with `local-jobs: 0` the build could
 * only fail, and otherwise it would run on the runner: refuse it before anything is written. Before 2.34 the builder
 * does a normal build of what it is sent, so a builder that still has the outputs returns them without building
 * (NixOS/nix#8789): the log then shows the check was sent there, not that it built anything.
 */
function checkRebuild(facts: RunnerFacts, settings: Settings, strategy: ChosenStrategy): void {
  // In the builder's own store the check build runs there: nothing to refuse or warn about.
  if (!settings.rebuild || strategy === 'remote-store') return
  if (checksOnlyLocally(runnerRelease(facts))) {
    throw new SetupError(
      `Input '${Input.Rebuild}': the runner's Nix ${facts.nixVersion} never sends a check build (--rebuild) to a ` +
        'builder: from Nix 2.34 it always checks outputs on the runner itself. For a proof that builds run on the ' +
        `builder, build a derivation whose outputs exist nowhere yet (e.g. a nonce in an attribute), and set ` +
        `'${Input.Rebuild}: false'.`,
      `input ${Input.Rebuild}`
    )
  }
  logWarning(
    `'${Input.Rebuild}: true' sends Nix's check build (--rebuild) to the builder, but a builder that already has ` +
      'the outputs returns them without building them again (NixOS/nix#8789), and a runner on Nix 2.34 or later ' +
      'never sends it at all. For a proof, build a derivation whose outputs exist nowhere yet.',
    { title: 'nix-offload: rebuild' }
  )
}

/** Whether the runner's store takes the builder's unsigned outputs back from this user. */
function trustOf(facts: RunnerFacts): RunnerTrust {
  return { acceptsUnsignedPaths: facts.store === 'local' || facts.trusted || facts.isRoot }
}
