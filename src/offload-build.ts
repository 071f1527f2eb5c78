import { hookWithFailover, liveTools, machinesRewriter, storeWithFailover } from './failover.js'
import { publish } from './publish.js'
import type { Configured, OffloadStep } from './offload-setup.js'
import { endGroup, logInfo, Phase, phase, startGroup } from './base/index.js'
import { Input, label, type Settings } from './inputs/index.js'
import { pushOutputs } from './store-push.js'
import type { FailoverEntry, PushEntry } from './report/index.js'
import {
  asksForOutLinks,
  type BuildOutcome,
  buildInStores,
  buildOnBuilder,
  runBuild,
  type StoreBuildOptions,
  type StoreBuildOutcome,
  type StoreRoute,
  type StrategyChoice,
  transferBytes
} from './nix/index.js'
import { type BuildReport, type Checks, makeReport, proofLine } from './report/index.js'
import { nixEnvironment, type Plan, runnerRelease, saveJournal, undoJournal } from './runner/index.js'

/** What the build left: Nix's outcome and, in a builder's own store, the proofs, copies back and sizes it adds. */
export type Built = BuildOutcome &
  Partial<Pick<StoreBuildOutcome, 'proofs' | 'copiedBack' | 'builtIn' | 'sizes'>> & {
    failovers?: FailoverEntry[]
    pushes?: PushEntry[]
  }

/** The build, through Nix's build hook or in a builder's own store. */
export async function buildBuilt(options: {
  step: OffloadStep
  choice: StrategyChoice
  plan: Plan
}): Promise<Built> {
  const { step, choice, plan } = options
  if (choice.strategy === 'remote-store') {
    const env = nixEnvironment(plan, process.env)
    const pusher = builderPusher(step.settings, env)
    const built: Built = await phase(
      'build',
      buildInBuilderStore({ ...options, beforeCopyBack: pusher.push })
    )
    if (step.settings.evaluate === 'builder') return pushBuilt(step.settings, built, env)
    return step.settings.pushTo === undefined ? built : { ...built, pushes: pusher.pushes }
  }
  const labels = new Map(plan.builders.map(builder => [builder.storeUri, label(builder)]))
  const tools = {
    ...liveTools(step.settings, step.facts),
    build: (settings: typeof step.settings) => runBuild(settings, process.env, { labels }),
    useMachines: machinesRewriter(plan)
  }
  const job = { settings: step.settings, builders: plan.builders, runnerUser: step.facts.userName }
  return phase('build', hookWithFailover({ ...job, tools }))
}

/**
 * `push-to` for builds evaluated on the runner: as each route's build is done, and before its outputs come back, its
 * builder copies them to that store from its own. A failed push fails the build, with its line for the diagnosis.
 */
function builderPusher(
  settings: Settings,
  env: NodeJS.ProcessEnv
): {
  push?: (storeUri: string, outPaths: readonly string[]) => Promise<string | undefined>
  pushes: PushEntry[]
} {
  const pushes: PushEntry[] = []
  if (settings.pushTo === undefined) return { pushes }
  return {
    pushes,
    push: async (storeUri, outPaths) => {
      const pushed = await pushOutputs(settings, new Map([[storeUri, outPaths]]), env)
      pushes.push(...pushed.pushes)
      return pushed.failure
    }
  }
}

/**
 * `push-to` for a build evaluated on the builder (`evaluate: builder`), which brings its outputs back in the same
 * command: once it is over, the builder copies them to that store from its own; a failed push fails the build.
 */
async function pushBuilt(settings: Settings, built: Built, env: NodeJS.ProcessEnv): Promise<Built> {
  if (settings.pushTo === undefined || built.exitCode !== 0 || built.builtIn === undefined) return built
  const { pushes, failure } = await pushOutputs(settings, built.builtIn, env)
  if (failure === undefined) return { ...built, pushes }
  return { ...built, pushes, exitCode: 1, messages: [...built.messages, failure] }
}

/** The build in a builder's own store: evaluated on the runner (buildInStores), or on the builder (buildOnBuilder). */
function buildInBuilderStore(options: {
  step: OffloadStep
  choice: StrategyChoice
  plan: Plan
  beforeCopyBack?: StoreBuildOptions['beforeCopyBack']
}): Promise<StoreBuildOutcome> {
  const { step, choice, plan } = options
  const { facts, settings } = step
  const routes = choice.routes
  const env = nixEnvironment(plan, process.env)
  const [first] = routes
  if (settings.evaluate === 'builder' && first !== undefined) {
    return buildOnBuilder(settings, { release: runnerRelease(facts), route: first, env })
  }
  const release = runnerRelease(facts)
  const hooks = options.beforeCopyBack === undefined ? {} : { beforeCopyBack: options.beforeCopyBack }
  // Route by route, so that a lost builder's route can move: with several routes, out-links made per route would
  // overwrite one another, so such a build keeps the one call.
  if (routes.length > 1 && asksForOutLinks(settings.args)) {
    return buildInStores({ release, settings, routes, env, workDir: plan.workDir, ...hooks })
  }
  const tools = {
    ...liveTools(settings, facts),
    build: (some: StoreRoute[]) =>
      buildInStores({ release, settings, routes: some, env, workDir: plan.workDir, ...hooks }),
    buildOnRunner: (route: StoreRoute, local: typeof settings) =>
      runBuild({ ...local, installables: route.installables }, env)
  }
  const job = { settings, builders: plan.builders, runnerUser: facts.userName }
  return storeWithFailover({ ...job, routes, tools })
}

/**
 * Nothing after the build uses the remote-store plan's files or SSH master (later steps are not configured, and a
 * second look opens its own connection): they go now, beside the report, rather than linger until the post step.
 * What it says waits for sayUndone, so that it does not land in the middle of the proof's group.
 */
export function undoStorePlan(configured: Configured): Promise<string | undefined> | undefined {
  return configured.plan.path === 'remote-store' ? undoNow(configured) : undefined
}

/** The end of the remote-store plan's undo, and what it says, in a group of its own. */
export async function sayUndone(undoing: Promise<string | undefined> | undefined): Promise<void> {
  const said = await undoing
  if (said === undefined) return
  startGroup(Phase.Undo)
  logInfo(said)
  endGroup()
}

/** Undoes the remote-store plan at the end of main, so the post step has nothing left to undo. */
async function undoNow({ journal, masters }: Configured): Promise<string | undefined> {
  // Its masters are this process's children, ended by SIGTERM (or, when ssh made its own connection, by closing their
  // input): `ssh -O stop` and the search for a master left over are only needed when one did not end by itself. No
  // session leaves a master of its own (ControlPersist no).
  const closed = await masters.close()
  const undo = closed ? journal.undo.filter(entry => entry.kind !== 'close-ssh-masters') : journal.undo
  const { failures } = await undoJournal({ ...journal, undo })
  if (failures > 0) return undefined
  saveJournal({ asRoot: journal.asRoot, undo: [] })
  return `Closed this step's SSH master and removed its files: nothing is left for the post step to undo.`
}

/** Where each derivation ran, with the proof and the bytes moved per builder: the report, published. */
export async function reportBuild(options: {
  step: OffloadStep
  choice: StrategyChoice
  built: Built
  plan: Plan
  checks: Checks
}): Promise<BuildReport> {
  const { step, choice, built, plan, checks } = options
  const onBuilder = choice.strategy === 'remote-store' && !step.settings.copyBack
  const transfers = await transferBytes(
    built.copies,
    plan.builders.map(builder => builder.storeUri),
    built.copiedBack ?? new Map(),
    nixEnvironment(plan, process.env),
    built.sizes ?? new Map()
  )
  const succeeded = built.exitCode === 0
  const report: BuildReport = makeReport({
    plan,
    builds: built.builds,
    outPaths: built.outPaths,
    checks,
    storeProofs: built.proofs,
    outputsOnBuilder: onBuilder,
    transfers,
    succeeded
  })
  if (built.failovers !== undefined && built.failovers.length > 0) report.failovers = built.failovers
  if (built.pushes !== undefined) report.pushes = built.pushes
  logInfo(proofLine(report))
  if (onBuilder && succeeded) {
    logInfo(
      `'${Input.CopyBack}: false': the outputs stay in the builder's store: ${built.outPaths.join(' ')}`
    )
  }
  await publish(report, step.settings, true)
  return report
}

/** A configure-only step: the report of what was configured, for later steps' `nix build` to offload through. */
export async function reportConfigureOnly(options: {
  step: OffloadStep
  plan: Plan
  checks: Checks
}): Promise<void> {
  const { step, plan, checks } = options
  await publish(makeReport({ plan, checks }), step.settings, false)
  logInfo('No installables or args: the runner is configured, and later steps that run `nix build` offload.')
}
