import * as core from '@actions/core'
import { publish } from './publish.js'
import { buildOnRunner } from './fallback.js'
import { type EarlyStore, startStoreEarly, tempDirectory, undoEarly } from './store-early.js'
import { logInfo, phase } from './base/index.js'
import { admitBuilders, checkAgain, type PreflightOutcome, secondLook } from './builders/index.js'
import {
  type Builder,
  givenBuilders,
  Input,
  label,
  type Settings,
  SetupError,
  wantsBuild
} from './inputs/index.js'
import {
  type BuildOutcome,
  buildInStores,
  buildOnBuilder,
  checksOnlyLocally,
  chooseEvaluatingBuilder,
  type ChosenStrategy,
  type StrategyChoice,
  chooseStrategy,
  type InstallableLookup,
  installableNeeds,
  lastError,
  runBuild,
  type StoreBuildOutcome,
  type StoreRoute,
  transferBytes
} from './nix/index.js'
import { builderOffer, diagnose, orderDiagnoses } from './diagnosis/index.js'
import { type BuildReport, type Checks, makeReport } from './report/index.js'
import {
  announcePlan,
  closeStoreMasters,
  configureRunner,
  exportNixConfig,
  makePlan,
  makeStorePlan,
  nixEnvironment,
  type Journal,
  type Plan,
  type RunnerFacts,
  runnerRelease,
  saveJournal,
  undoJournal
} from './runner/index.js'

/**
 * Build mode: preflight, configure the runner, build, prove where each derivation ran, report.
 *
 * When the configuration does not depend on the preflight (no `auto` value, no `skip-unhealthy`) and needs no
 * daemon restart, the runner is configured, and the masters opened, while the preflight still runs: the two SSH
 * handshakes overlap instead of adding up. A builder that then fails its preflight fails the step as before, and the
 * configuration is undone before the error: the runner is as it was when main ends, and post has nothing to undo.
 */
export async function offload(
  facts: RunnerFacts,
  settings: Settings,
  checking: Promise<PreflightOutcome>,
  started: { token: string; store: EarlyStore | undefined }
): Promise<void> {
  const { token } = started
  // The strategy waits for the builders and for what the installables need (evaluated now, beside the preflight),
  // unless it is the hook for sure; only then may the runner be configured before the preflight's verdict.
  const hookForSure = settings.strategy === 'hook' || !wantsBuild(settings)
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
  const given = settings.skipUnhealthy || !hookForSure ? undefined : givenBuilders(settings.builders)
  const earlyPlan = given === undefined ? undefined : planWithoutRestart(settings, given, facts, token)
  // Its store check waits up to a minute on a builder whose daemon hangs: a failed preflight stops it (undoEarly).
  const earlyCheck = new AbortController()
  const early =
    earlyPlan === undefined
      ? undefined
      : configureRunner(earlyPlan, facts, { announce: true, signal: earlyCheck.signal })
  early?.catch(() => undefined)
  // Likewise the remote-store plan and its store check (store-early.ts), started with the step when that strategy
  // was likely; kept if it still is and the probe left the settings as they were, else made again here.
  const storeLikely = !(
    hookForSure ||
    settings.skipUnhealthy ||
    (settings.copyBack && !trustOf(facts).acceptsUnsignedPaths)
  )
  const keep = storeLikely && started.store?.settings === settings
  if (started.store !== undefined && !keep) await undoEarly(started.store.configuring, false)
  const earlyStore = keep
    ? started.store?.configuring
    : storeLikely
      ? startStoreEarly(settings, token)?.configuring
      : undefined
  const checked = await checking
  const checks: Checks = {
    runner: {
      nixVersion: facts.nixVersion,
      system: facts.system,
      store: facts.store,
      user: facts.userName,
      trusted: facts.trusted
    },
    preflight: checked.results,
    stores: []
  }
  try {
    admitBuilders(checked, settings)
  } catch (error) {
    earlyCheck.abort()
    if (early !== undefined) await undoEarly(early)
    if (earlyStore !== undefined) await undoEarly(earlyStore, false)
    if (settings.fallback === 'local' && checked.builders.length === 0) {
      const first = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error)
      await buildOnRunner(facts, settings, `every builder failed its preflight (${first})`, checks)
      return
    }
    await publish(makeReport({ builds: [], outPaths: [], checks }), settings, false)
    throw error
  }

  let choice: StrategyChoice
  try {
    const lookup = await needing
    const offers = checked.builders.map((builder, index) => ({ index, label: label(builder), ...builder }))
    choice =
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
  } catch (error) {
    // Refused before anything of its own is left: the early remote-store files go first.
    if (earlyStore !== undefined) await undoEarly(earlyStore, false)
    throw error
  }
  const plan =
    choice.strategy === 'remote-store'
      ? makeStorePlan(settings, checked.builders, token, tempDirectory())
      : (earlyPlan ?? makePlan(settings, checked.builders, facts, token))
  // The early remote-store configuration wrote the same files (the same builders, in order, and token), and checked
  // each builder through its shell: not what a builder whose key runs only nix-daemon takes.
  const shellOnly = checked.builders.every(builder => builder.access === undefined)
  const keptStore = choice.strategy === 'remote-store' && shellOnly ? earlyStore : undefined
  if (earlyStore !== undefined && keptStore === undefined) await undoEarly(earlyStore, false)
  if (keptStore !== undefined) announcePlan(plan, facts)
  const { stores, journal } = await (early ?? keptStore ?? configureRunner(plan, facts))
  exportNixConfig(plan)
  checks.stores = stores
  const unreachable = checks.stores.filter(store => !store.ok)
  if (unreachable.length > 0) {
    await publish(makeReport({ plan, builds: [], outPaths: [], checks }), settings, false)
    const who = plan.asRoot ? 'root (the account the nix-daemon connects as)' : facts.userName
    throw new SetupError(
      unreachable
        .map(
          store =>
            `Builder ${store.builder} passed the preflight, but \`${store.command}\` as ${who} ` +
            `failed: ${store.error ?? 'no output'}`
        )
        .join('\n')
    )
  }

  if (!wantsBuild(settings)) {
    await publish(makeReport({ plan, builds: [], outPaths: [], checks }), settings, false)
    logInfo(
      'No installables or args: the runner is configured, and later steps that run `nix build` offload.'
    )
    return
  }

  let proofs: StoreBuildOutcome['proofs'] | undefined
  let copiedBack: StoreBuildOutcome['copiedBack'] = new Map()
  let sizes: StoreBuildOutcome['sizes'] = new Map()
  const outcome: BuildOutcome =
    choice.strategy === 'remote-store'
      ? await phase('build', buildInBuilderStore(facts, settings, choice, plan)).then(built => {
          proofs = built.proofs
          copiedBack = built.copiedBack
          sizes = built.sizes
          return built
        })
      : await phase(
          'build',
          runBuild(settings, process.env, {
            labels: new Map(plan.builders.map(builder => [builder.storeUri, label(builder)]))
          })
        )
  const onBuilder = choice.strategy === 'remote-store' && !settings.copyBack
  // Nothing after the build uses the remote-store plan's files or SSH master (later steps are not configured, and a
  // second look opens its own connection): they go now, beside the report, rather than linger until the post step.
  const undoing = plan.path === 'remote-store' ? undoNow(journal) : undefined
  const transfers = await transferBytes(
    outcome.copies,
    plan.builders.map(builder => builder.storeUri),
    copiedBack,
    nixEnvironment(plan, process.env),
    sizes
  )
  const report = makeReport({
    plan,
    builds: outcome.builds,
    outPaths: outcome.outPaths,
    checks,
    storeProofs: proofs,
    outputsOnBuilder: onBuilder,
    transfers,
    succeeded: outcome.exitCode === 0
  })
  if (onBuilder && outcome.exitCode === 0) {
    logInfo(
      `'${Input.CopyBack}: false': the outputs stay in the builder's store: ${outcome.outPaths.join(' ')}`
    )
  }
  await publish(report, settings, true)
  await undoing
  await judgeBuild(outcome, report, plan, facts, settings)
}

/** The build in a builder's own store: evaluated on the runner (buildInStores), or on the builder (buildOnBuilder). */
function buildInBuilderStore(
  facts: RunnerFacts,
  settings: Settings,
  choice: StrategyChoice,
  plan: Plan
): Promise<StoreBuildOutcome> {
  const routes = choice.routes.map(route => storeRoute(route, plan.builders[route.index]))
  const env = nixEnvironment(plan, process.env)
  const [first] = routes
  if (settings.evaluate === 'builder' && first !== undefined) {
    return buildOnBuilder(settings, { release: runnerRelease(facts), route: first, env })
  }
  return buildInStores(
    runnerRelease(facts),
    settings,
    routes,
    storeUri => plan.builders.find(builder => builder.storeUri === storeUri)?.maxJobs ?? 1,
    env,
    plan.workDir
  )
}

/** A route with its builder's store URI, and what its key may run there (for the proof). */
function storeRoute(route: StoreRoute, builder: Plan['builders'][number] | undefined): StoreRoute {
  const routed: StoreRoute = { ...route, storeUri: builder?.storeUri ?? '' }
  if (builder?.access !== undefined) routed.access = builder.access
  return routed
}

/** Undoes the remote-store plan at the end of main, so the post step has nothing left to undo. */
async function undoNow(journal: Journal): Promise<void> {
  // Its masters are this process's children, ended by SIGTERM (or, when ssh made its own connection, by closing their
  // input): `ssh -O stop` and the search for a master left over (two process starts on the step's path) are only
  // needed when one did not end by itself. No session leaves a master of its own (ControlPersist no).
  const closed = await closeStoreMasters()
  const undo = closed ? journal.undo.filter(entry => entry.kind !== 'close-ssh-masters') : journal.undo
  const { failures } = await undoJournal({ ...journal, undo })
  if (failures > 0) return
  saveJournal({ asRoot: journal.asRoot, undo: [] })
  logInfo(`Closed this step's SSH master and removed its files: nothing is left for the post step to undo.`)
}

/**
 * The plan, when the runner can be configured before the preflight's verdict: it needs no daemon restart. A plan that
 * cannot be made says so after the preflight, in its usual place.
 */
function planWithoutRestart(
  settings: Settings,
  builders: Builder[],
  facts: RunnerFacts,
  token: string
): Plan | undefined {
  try {
    const plan = makePlan(settings, builders, facts, token)
    return plan.path === 'daemon-config' ? undefined : plan
  } catch {
    return undefined
  }
}

async function judgeBuild(
  outcome: BuildOutcome,
  report: BuildReport,
  plan: Plan,
  facts: RunnerFacts,
  settings: Settings
): Promise<void> {
  const machines = new Map(outcome.builds.map(build => [build.drvPath, build.machine]))
  const found = orderDiagnoses(
    diagnose(outcome.messages, {
      builders: plan.builders.map(builderOffer),
      lastLogLines: drvPath => outcome.lastLines.get(drvPath) ?? [],
      runnerUser: facts.userName,
      machineOf: drvPath => machines.get(drvPath),
      lastRemoteBuild: () => {
        const remote = outcome.builds
          .filter(build => build.machine !== '')
          .sort((x, y) => y.start - x.start)[0]
        return remote === undefined ? undefined : { drvPath: remote.drvPath, machine: remote.machine }
      },
      copiedTo: path => outcome.copies.filter(copy => copy.path === path && copy.to !== 'local').at(-1)?.to,
      ...(plan.path === 'remote-store' && plan.builders.length === 1
        ? { buildStore: plan.builders[0]?.storeUri }
        : {})
    })
  )
  const diagnoses = await phase(
    'second look',
    secondLook(found, plan.builders, {
      check: builder => checkAgain(builder, settings, facts.nixVersion),
      info: logInfo
    })
  )
  // The cause that fails the step is its own error line; every other finding becomes an annotation.
  const first =
    outcome.exitCode === 0 ? undefined : diagnoses.find(diagnosis => diagnosis.severity === 'error')
  for (const diagnosis of diagnoses) {
    if (diagnosis === first) continue
    const annotate = diagnosis.severity === 'error' ? core.error : core.warning
    annotate(diagnosis.message, { title: `nix-offload: ${diagnosis.title}` })
  }
  if (outcome.exitCode !== 0) {
    throw new Error(
      first?.message ?? `nix build failed (exit code ${outcome.exitCode}): ${lastError(outcome)}`
    )
  }
  if (report.derivations.length === 0) {
    core.warning(
      'Nothing was built: every output was already valid, so this run does not prove that builds run on the builder. ' +
        'Build a derivation whose outputs exist nowhere yet (e.g. a nonce in an attribute) for a proof.',
      { title: 'nix-offload: nothing built' }
    )
  }
  const unproven = report.derivations.filter(derivation => derivation.proof?.store === false)
  for (const derivation of unproven) {
    const annotate = settings.requireRemote ? core.error : core.warning
    annotate(
      `${derivation.drvPath}: Nix's log shows it built in the builder's store, but that store disagrees: ` +
        `${derivation.proof?.problem ?? 'no proof'}.`,
      { title: 'nix-offload: proof' }
    )
  }
  if (settings.requireRemote && unproven.length > 0) {
    throw new Error(
      `${unproven.length} derivation(s) have no proof from the builder's store although '${Input.RequireRemote}' is ` +
        `true: ${unproven.map(derivation => derivation.name).join(', ')}.`
    )
  }
  const local = report.derivations.filter(derivation => derivation.machine === 'local')
  if (!settings.requireRemote && local.length > 0) {
    core.warning(
      `${local.length} derivation(s) were built on the runner, not on a builder: ` +
        `${local.map(derivation => derivation.name).join(', ')}.`,
      { title: 'nix-offload: local fallback' }
    )
  }
  if (settings.requireRemote && local.length > 0) {
    for (const derivation of local) {
      core.error(`${derivation.drvPath} was built on the runner, not on a builder.`, {
        title: 'nix-offload: local build'
      })
    }
    throw new Error(
      `${local.length} derivation(s) were built on the runner although '${Input.RequireRemote}' is true: ` +
        `${local.map(derivation => derivation.name).join(', ')}. Check that a builder offers their system and ` +
        `features, or set '${Input.LocalJobs}: 0' so nothing can build locally.`
    )
  }
}

/**
 * `rebuild` passes `--rebuild`, a check build. Nix 2.34+ never offloads one, so with `local-jobs: 0` the build could
 * only fail, and otherwise it would run on the runner: refuse it before anything is written. Before 2.34 the builder
 * does a normal build of what it is sent, so a builder that still has the outputs returns them without building
 * (NixOS/nix#8789): the log then shows the check was sent there, not that it built anything.
 */
function checkRebuild(facts: RunnerFacts, settings: Settings, strategy: ChosenStrategy): void {
  // In the builder's own store the check build runs there: nothing to refuse or warn about.
  if (!settings.rebuild || settings.mode !== 'build' || strategy === 'remote-store') return
  if (checksOnlyLocally(runnerRelease(facts))) {
    throw new SetupError(
      `Input '${Input.Rebuild}': the runner's Nix ${facts.nixVersion} never sends a check build (--rebuild) to a ` +
        'builder: from Nix 2.34 it always checks outputs on the runner itself. For a proof that builds run on the ' +
        `builder, build a derivation whose outputs exist nowhere yet (e.g. a nonce in an attribute), and set ` +
        `'${Input.Rebuild}: false'.`
    )
  }
  core.warning(
    `'${Input.Rebuild}: true' sends Nix's check build (--rebuild) to the builder, but a builder that already has ` +
      'the outputs returns them without building them again (NixOS/nix#8789), and a runner on Nix 2.34 or later ' +
      'never sends it at all. For a proof, build a derivation whose outputs exist nowhere yet.',
    { title: 'nix-offload: rebuild' }
  )
}

/** Whether the runner's store takes the builder's unsigned outputs back from this user. */
function trustOf(facts: RunnerFacts): { acceptsUnsignedPaths: boolean } {
  return { acceptsUnsignedPaths: facts.store === 'local' || facts.trusted || facts.isRoot }
}
