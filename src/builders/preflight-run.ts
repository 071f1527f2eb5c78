import { Input, label } from '../inputs/index.js'
import { SetupError } from '../inputs/index.js'
import { inspectBuilder } from './preflight.js'
import { judge, type PreflightResult, type PreflightWarning, preflightWarnings } from './preflight-verdict.js'
import type { Builder, Settings } from '../inputs/index.js'
import { AnnotatedFailure, logError, logInfo, logWarning } from '../base/index.js'

const OPTIONS = { connectTimeoutMs: 10_000, timeoutMs: 30_000 }

export interface PreflightOutcome {
  results: PreflightResult[]
  /** The healthy builders, `auto` resolved: the ones the action configures. */
  builders: Builder[]
  /** About healthy builders, for the build: printed when the builders are admitted. */
  warnings: PreflightWarning[]
}

/**
 * Inspects every builder at once, prints what it found, and decides which builders the action goes on with.
 * `runnerNixVersion` comes from the runner probe, which runs at the same time: the verdict waits for it.
 */
export async function preflight(
  settings: Settings,
  runnerNixVersion: Promise<string>
): Promise<PreflightOutcome> {
  const observations = await Promise.all(
    settings.builders.map(builder =>
      inspectBuilder(builder, settings.knownHosts, settings.privateKey, OPTIONS)
    )
  )
  // A failed probe has its own error, which the step reports first.
  const runnerVersion = await runnerNixVersion.catch(() => '')
  const judged = settings.builders.map((builder, index) => {
    const observation = observations[index]
    if (observation === undefined) throw new Error('preflight lost a builder')
    return judge(builder, observation, settings.privateKey, runnerVersion, settings.strategy)
  })
  const results = judged.map(entry => entry.result)
  for (const result of results) logInfo(describe(result))
  const healthy = judged.flatMap(entry => (entry.builder === undefined ? [] : [entry.builder]))
  const { builders, passedOver } = passOverLowOnDisk(healthy, results, settings.minFreeGib)
  const warnings = [...preflightWarnings(settings.builders, results, settings), ...passedOver]
  return { results, builders, warnings }
}

const GIB = 2 ** 30

/**
 * Leaves out the healthy builders with less than `min-free-gib` free in their store's filesystem, each with a warning
 * and a note on its result for the summary. A builder whose free space is unknown is kept. When none would be left,
 * the step fails before anything is changed, naming the input (admitBuilders).
 */
export function passOverLowOnDisk(
  healthy: Builder[],
  results: PreflightResult[],
  minFreeGib: number
): { builders: Builder[]; passedOver: PreflightWarning[] } {
  const builders: Builder[] = []
  const passedOver: PreflightWarning[] = []
  for (const builder of healthy) {
    const free = builder.load?.storeFreeBytes
    if (minFreeGib === 0 || free === undefined || free >= minFreeGib * GIB) {
      builders.push(builder)
      continue
    }
    const name = label(builder)
    const why = `${(free / GIB).toFixed(1)} GiB free in its /nix/store, under '${Input.MinFreeGib}: ${minFreeGib}'`
    const result = results.find(entry => entry.builder === name)
    if (result !== undefined) result.passedOver = why
    passedOver.push({
      builder: name,
      title: 'low on disk',
      message:
        `Builder ${name} was passed over: ${why}. Fix: free space there (nix-collect-garbage), or lower ` +
        `'${Input.MinFreeGib}'.`
    })
  }
  return { builders, passedOver }
}

/** The preflight's check of one builder, run again (after Nix lost it): the same SSH handshake, the same verdict. */
export async function checkAgain(
  builder: Builder,
  settings: Settings,
  runnerNixVersion: string
): Promise<PreflightResult> {
  const observation = await inspectBuilder(builder, settings.knownHosts, settings.privateKey, OPTIONS)
  return judge(builder, observation, settings.privateKey, runnerNixVersion, settings.strategy).result
}

/**
 * Fails on an unhealthy builder, unless `skip-unhealthy` lets the healthy ones carry on. Each unhealthy builder is
 * its own annotation, with what to do next, and the step fails with no other.
 */
export function admitBuilders(outcome: PreflightOutcome, settings: Settings): void {
  for (const warning of outcome.warnings) {
    logWarning(warning.message, { title: `nix-offload: ${warning.builder} ${warning.title}` })
  }
  const unhealthy = outcome.results.filter(result => !result.healthy)
  if (unhealthy.length === 0 && outcome.builders.length === 0)
    throw new SetupError(allLowMessage(outcome, settings), `input ${Input.MinFreeGib}`)
  if (unhealthy.length === 0) return
  const skip = settings.skipUnhealthy && outcome.builders.length > 0
  const next = skip
    ? `\nSkipped ('${Input.SkipUnhealthy}' is true).`
    : outcome.builders.length > 0
      ? `\nSet '${Input.SkipUnhealthy}: true' to build on the ${outcome.builders.length} healthy builder(s) anyway.`
      : ''
  const annotate = skip ? logWarning : logError
  for (const result of unhealthy) {
    annotate(`${result.message ?? ''}${next}`, {
      title: `nix-offload: ${result.builder} ${result.cause ?? 'unhealthy'}`
    })
  }
  if (skip) return
  const first = unhealthy[0]?.message ?? 'a builder failed the preflight'
  const more =
    unhealthy.length > 1
      ? `\n(${unhealthy.length} of ${outcome.results.length} builders failed the preflight.)`
      : ''
  throw new AnnotatedFailure(`${first}${more}`)
}

function allLowMessage(outcome: PreflightOutcome, settings: Settings): string {
  const low = outcome.results.map(result => `${result.builder} (${result.passedOver ?? 'passed over'})`)
  return (
    `Input '${Input.MinFreeGib}: ${settings.minFreeGib}' passed over every builder: ${low.join('; ')}. Fix: free ` +
    `space on a builder (nix-collect-garbage), or lower '${Input.MinFreeGib}'.`
  )
}

function describe(result: PreflightResult): string {
  if (!result.healthy) return `✗ ${result.builder}: ${result.cause}`
  const parts = [
    `✓ ${result.builder}`,
    `TCP ${result.connectMs} ms`,
    `host key ${result.hostKey?.presented ?? '?'} pinned`,
    `${result.keyType} key accepted`,
    `${result.remoteProgram} (Nix ${result.nixVersion || '?'})`
  ]
  if (result.access !== undefined && result.access !== 'shell')
    parts.push(`key runs only ${result.access === 'nix-daemon' ? 'nix-daemon --stdio' : 'nix-store --serve'}`)
  if (result.builderUserTrusted !== undefined)
    parts.push(result.builderUserTrusted ? 'user trusted' : 'user not trusted')
  if (result.detected !== undefined) parts.push(`detected ${JSON.stringify(result.detected)}`)
  return parts.join(', ')
}
