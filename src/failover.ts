import { cpus } from 'node:os'
import { type ConfiguredBuilder, Input, label, type Settings } from './inputs/index.js'
import { builderOffer, diagnose, type Diagnosis, outcomeContext, retryDecision } from './diagnosis/index.js'
import type { BuildOutcome, BuildRecord, StoreBuildOutcome, StoreRoute } from './nix/index.js'
import { checkAgain, type PreflightResult } from './builders/index.js'
import { logInfo, logWarning } from './base/index.js'
import type { FailoverEntry } from './report/index.js'
import { checkAll, fileOps, machinesFileOp, type Plan, type RunnerFacts, viaSudo } from './runner/index.js'

/**
 * Keeps building when a builder is lost after the preflight (`retries`). Nix's hook already skips a machine it cannot
 * connect to as a derivation starts, but a build whose connection drops mid-way fails the whole `nix build`: the
 * attempt is diagnosed, and only when every error is transient (diagnosis/retry.ts) is it tried again, the lost builder
 * checked once more and, if it still fails, left out. Outputs already built are valid by then, so only unfinished work
 * goes again. A builder script that failed is never built again.
 */

/** What a failover loop needs from the outside, injected so that it can be tested without Nix or SSH. */
export interface FailoverTools {
  /** The preflight's SSH check, run again on a builder the build lost. */
  check: (builder: ConfiguredBuilder) => Promise<PreflightResult>
  now: () => number
  info: (line: string) => void
}

export interface HookTools extends FailoverTools {
  /** Runs the step's `nix build` through the machines configuration as it is now. */
  build: (settings: Settings) => Promise<BuildOutcome>
  /** Rewrites the action's own machines block to name these builders only. */
  useMachines: (builders: readonly ConfiguredBuilder[]) => Promise<void>
}

/** A build's outcome over every attempt, and the builders it lost on the way. */
export type WithFailovers<T extends BuildOutcome> = T & { failovers: FailoverEntry[] }

/** What both loops share: the settings, the builders the plan configured, and the user the diagnosis names. */
interface FailoverJob {
  settings: Settings
  builders: readonly ConfiguredBuilder[]
  runnerUser: string
}

/** The hook's build, tried again after a transient failure without the builders that stay lost. */
export async function hookWithFailover(
  job: FailoverJob & { tools: HookTools }
): Promise<WithFailovers<BuildOutcome>> {
  const { settings, tools } = job
  let builders = [...job.builders]
  let outcome = await tools.build(settings)
  let merged = outcome
  const failovers: FailoverEntry[] = []
  const rebuilt: string[] = []
  const ranOn = new Map<string, BuildRecord[]>()
  for (let attempts = 1; outcome.exitCode !== 0; attempts++) {
    const diagnoses = diagnoseAttempt(outcome, { ...job, builders })
    const recorded = failovers.length
    const next = await nextHookAttempt({ ...job, builders, diagnoses, attempts, outcome, failovers })
    for (const entry of failovers.slice(recorded))
      ranOn.set(
        entry.builder,
        outcome.builds.filter(build => build.machine === entry.builder)
      )
    if (next === undefined) break
    if (next.builders.length !== builders.length) await tools.useMachines(next.builders)
    builders = next.builders
    outcome = await tools.build(next.onRunner ? onRunner(settings) : settings)
    merged = mergeAttempts(merged, outcome)
    rebuilt.push(...outcome.builds.map(build => build.drvPath))
    if (next.onRunner) break
  }
  return { ...merged, failovers: movedWork(failovers, ranOn, rebuilt) }
}

/**
 * Each lost builder's derivations that a later attempt built again: its unfinished work (a build cut off there looks
 * done in Nix's log). Without a later build, the entry keeps what the log left unfinished.
 */
function movedWork(
  failovers: readonly FailoverEntry[],
  ranOn: ReadonlyMap<string, readonly BuildRecord[]>,
  rebuilt: readonly string[]
): FailoverEntry[] {
  const again = new Set(rebuilt)
  return failovers.map(entry => {
    const moved = (ranOn.get(entry.builder) ?? []).map(build => build.drvPath).filter(drv => again.has(drv))
    return moved.length > 0 ? { ...entry, derivations: moved } : entry
  })
}

/**
 * After a failed attempt: the builders the next one uses (and whether the runner builds too), or undefined to stop.
 * With the lost builders gone and none that fits left, `fallback: local` lets the runner build what remains.
 */
async function nextHookAttempt(
  options: FailoverJob & {
    tools: FailoverTools
    diagnoses: Diagnosis[]
    attempts: number
    outcome: BuildOutcome
    failovers: FailoverEntry[]
  }
): Promise<{ builders: ConfiguredBuilder[]; onRunner: boolean } | undefined> {
  const { settings, builders, diagnoses, failovers } = options
  const decision = retryDecision({ diagnoses, attempts: options.attempts, retries: settings.retries })
  if (!decision.retry) {
    const noneFits = diagnoses.some(d => d.cause === 'no-matching-builder' || d.cause === 'no-local-slot')
    const runner = failovers.length > 0 && noneFits && settings.fallback === 'local'
    return runner ? { builders: [...builders], onRunner: true } : undefined
  }
  const lost = await stillLost(suspects(decision.lost, options.outcome), options)
  const left = builders.filter(builder => !lost.has(builder.storeUri))
  const runner = left.length === 0 && settings.fallback === 'local'
  const movedTo = runner ? ['local'] : left.map(builder => builder.storeUri)
  for (const [uri, reason] of lost) {
    failovers.push(
      failoverEntry({ uri, reason, diagnoses, outcome: options.outcome, movedTo, now: options.tools.now })
    )
  }
  if (left.length === 0 && !runner) return undefined
  return { builders: left, onRunner: runner }
}

/**
 * The builders a failed attempt may have lost: those its errors name, and every builder it built on (a build cut off
 * by a dropped connection ends in Nix's log as if it were done, so "unfinished" cannot tell). A dropped connection that names no derivation is put on the last remote build, which with several
 * builders may be a healthy one, so the second look, not that guess, tells which builder is gone.
 */
function suspects(named: readonly string[], outcome: BuildOutcome): string[] {
  const remote = outcome.builds.filter(build => build.machine !== '')
  return [...new Set([...named, ...remote.map(build => build.machine)])]
}

/**
 * The suspected builders the second look still finds unhealthy, with why. A builder that answers again keeps its
 * work; that it answers is said only when no suspect is still lost, since otherwise it was only suspected.
 */
async function stillLost(
  uris: readonly string[],
  options: { builders: readonly ConfiguredBuilder[]; tools: FailoverTools }
): Promise<Map<string, string>> {
  const lost = new Map<string, string>()
  const answered: ConfiguredBuilder[] = []
  await Promise.all(
    uris.map(async uri => {
      const builder = options.builders.find(b => b.storeUri === uri)
      if (builder === undefined) return
      const result = await options.tools.check(builder).catch((error: unknown) => String(error))
      if (typeof result !== 'string' && result.healthy) {
        answered.push(builder)
        return
      }
      const why = typeof result === 'string' ? result : (result.message ?? result.cause ?? 'unhealthy')
      options.tools.info(`Builder ${label(builder)} is still lost: ${sentence(why.split('\n')[0] ?? '')}`)
      lost.set(uri, why)
    })
  )
  if (lost.size === 0)
    for (const builder of answered)
      options.tools.info(`Builder ${label(builder)} answers again after it was lost: building on it again.`)
  return lost
}

/** `text` ending in a full stop, unless it ends a sentence already. */
function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`
}

/** The failover record of one lost builder, from the attempt that lost it. */
function failoverEntry(options: {
  uri: string
  reason: string
  diagnoses: readonly Diagnosis[]
  outcome: BuildOutcome
  movedTo: string[]
  now: () => number
}): FailoverEntry {
  const { uri, diagnoses, outcome } = options
  const found = diagnoses.find(d => d.machine === uri && d.severity === 'error')
  const derivations = outcome.builds
    .filter(build => build.machine === uri && build.status !== 'built')
    .map(build => build.drvPath)
  return {
    builder: uri,
    at: new Date(options.now()).toISOString(),
    cause: found?.cause ?? 'builder-unreachable',
    reason: (found?.message ?? options.reason).split('\n')[0] ?? '',
    movedTo: options.movedTo,
    derivations
  }
}

/** What Nix's messages of one attempt say went wrong. */
function diagnoseAttempt(outcome: BuildOutcome, job: FailoverJob & { buildStore?: string }): Diagnosis[] {
  const base = { builders: job.builders.map(builderOffer), runnerUser: job.runnerUser }
  const context = outcomeContext(
    outcome,
    job.buildStore === undefined ? base : { ...base, buildStore: job.buildStore }
  )
  return diagnose(outcome.messages, context)
}

/** The settings for the runner's own share of the build: every core, as `fallback: local` builds. */
function onRunner(settings: Settings): Settings {
  logWarning(
    `Building the rest on the runner: no builder that fits is left, and '${Input.Fallback}: local' is set. ` +
      `'confirmed' is false for this run.`,
    { title: 'nix-offload: failover to the runner' }
  )
  return { ...settings, localJobs: Math.max(1, cpus().length) }
}

/**
 * Two attempts as one outcome: each derivation's last record, its attempts added up; the later attempt's exit code,
 * out paths and messages. Once the build succeeds, a derivation left unfinished earlier and not built again is
 * dropped: its outputs were valid by the end.
 */
export function mergeAttempts<T extends BuildOutcome>(earlier: T, later: T): T {
  const records = new Map<string, BuildRecord>(earlier.builds.map(build => [build.drvPath, build]))
  for (const build of later.builds) {
    const before = records.get(build.drvPath)
    records.set(build.drvPath, { ...build, attempts: build.attempts + (before?.attempts ?? 0) })
  }
  const builds = [...records.values()].filter(build => later.exitCode !== 0 || build.status === 'built')
  return {
    ...later,
    builds,
    lastLines: new Map([...earlier.lastLines, ...later.lastLines]),
    copies: [...earlier.copies, ...later.copies]
  }
}

export interface StoreTools extends FailoverTools {
  /** Builds the routes in their builders' stores, and copies back, as without failover. */
  build: (routes: StoreRoute[]) => Promise<StoreBuildOutcome>
  /** Builds a route's installables on the runner (`fallback: local`, no builder left). */
  buildOnRunner: (route: StoreRoute, settings: Settings) => Promise<BuildOutcome>
}

/**
 * remote-store: each route built in its builder's store; a route whose builder is lost goes to another healthy
 * builder that fits, which builds it from what is already there, then copies back as usual.
 */
export async function storeWithFailover(
  job: FailoverJob & { routes: readonly StoreRoute[]; tools: StoreTools }
): Promise<WithFailovers<StoreBuildOutcome>> {
  let total: StoreBuildOutcome | undefined
  const failovers: FailoverEntry[] = []
  const lost = new Set<string>()
  for (const route of job.routes) {
    const routed = await routeWithFailover({ ...job, route, lost, failovers })
    total = total === undefined ? routed : appendRoute(total, routed)
    if (routed.exitCode !== 0) break
  }
  return { ...(total ?? (await job.tools.build([]))), failovers }
}

/** One route, tried again on its builder once it answers, on another that fits, or on the runner. */
async function routeWithFailover(
  options: FailoverJob & {
    route: StoreRoute
    tools: StoreTools
    lost: Set<string>
    failovers: FailoverEntry[]
  }
): Promise<StoreBuildOutcome> {
  const { settings, tools, lost, failovers } = options
  let current = options.route
  let outcome = await tools.build([current])
  let merged = outcome
  for (let attempts = 1; outcome.exitCode !== 0; attempts++) {
    const diagnoses = diagnoseAttempt(outcome, { ...options, buildStore: current.storeUri })
    const decision = retryDecision({ diagnoses, attempts, retries: settings.retries })
    if (!decision.retry) break
    const why = (await stillLost([current.storeUri], options)).get(current.storeUri)
    if (why !== undefined) {
      lost.add(current.storeUri)
      const next = reroute(current, options.builders, lost)
      const runner = next === undefined && settings.fallback === 'local'
      const movedTo = next !== undefined ? [next.storeUri] : runner ? ['local'] : []
      const entry = { uri: current.storeUri, reason: why, diagnoses, outcome, movedTo, now: tools.now }
      failovers.push(failoverEntry(entry))
      if (runner) {
        const local = await tools.buildOnRunner(current, onRunner(settings))
        return { ...mergeAttempts(merged, { ...outcome, ...local }) }
      }
      if (next === undefined) break
      current = next
    }
    outcome = await tools.build([current])
    merged = mergeAttempts(merged, outcome)
  }
  return merged
}

/**
 * The route moved to the first healthy builder that can build whatever the lost one could: an ssh-ng store that
 * offers every system and feature the lost builder offered, and requires no feature it did not.
 */
export function reroute(
  route: StoreRoute,
  builders: readonly ConfiguredBuilder[],
  lost: ReadonlySet<string>
): StoreRoute | undefined {
  const from = builders.find(builder => builder.storeUri === route.storeUri)
  if (from === undefined) return undefined
  const index = builders.findIndex(
    builder =>
      !lost.has(builder.storeUri) &&
      builder.protocol === 'ssh-ng' &&
      from.systems.every(system => builder.systems.includes(system)) &&
      from.supportedFeatures.every(feature => builder.supportedFeatures.includes(feature)) &&
      builder.mandatoryFeatures.every(feature => from.mandatoryFeatures.includes(feature))
  )
  const to = builders[index]
  if (to === undefined) return undefined
  const moved: StoreRoute = {
    index,
    label: label(to),
    storeUri: to.storeUri,
    installables: route.installables,
    derivations: route.derivations,
    maxJobs: to.maxJobs
  }
  if (to.access !== undefined) moved.access = to.access
  return moved
}

/** Two routes' outcomes as one, as buildInStores adds up its routes. */
function appendRoute(total: StoreBuildOutcome, one: StoreBuildOutcome): StoreBuildOutcome {
  return {
    exitCode: total.exitCode !== 0 ? total.exitCode : one.exitCode,
    builds: [...total.builds, ...one.builds],
    outPaths: [...total.outPaths, ...one.outPaths],
    messages: [...total.messages, ...one.messages],
    lastLines: new Map([...total.lastLines, ...one.lastLines]),
    copies: [...total.copies, ...one.copies],
    proofs: new Map([...total.proofs, ...one.proofs]),
    copiedBack: new Map([...total.copiedBack, ...one.copiedBack]),
    builtIn: new Map([...total.builtIn, ...one.builtIn]),
    sizes: new Map([...total.sizes, ...one.sizes])
  }
}

/** The failover's checks, clock and log on the runner: the preflight's own check of one builder. */
export function liveTools(settings: Settings, facts: RunnerFacts): FailoverTools {
  return { check: builder => checkAgain(builder, settings, facts.nixVersion), now: Date.now, info: logInfo }
}

/**
 * Rewrites the plan's machines block (or file of its own) as the canary does: the same block, under the same token,
 * so the post step's undo of the plan still takes it back. The hook reads the machines file again for every build.
 */
export function machinesRewriter(plan: Plan): HookTools['useMachines'] {
  return async builders => {
    const ops = [machinesFileOp(plan, [...builders])]
    checkAll(ops, await fileOps(ops, { viaSudo: viaSudo(plan), keepGoing: false }))
  }
}
