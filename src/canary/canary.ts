import * as core from '@actions/core'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runBuild } from '../nix/index.js'
import { type CanaryTarget, renderCanaryExpression } from './canary-plan.js'
import { type CanaryEntry, type CanaryRun, judgeCanary, renderCanarySummary } from './canary-verdict.js'
import { configureBuilders, label, Output } from '../inputs/index.js'
import { checkAll, type FileOp, fileOps, newToken, viaSudo } from '../runner/index.js'
import type { BuildRecord, CopyRecord } from '../nix/index.js'
import { restoreHistory, saveHistory } from './history-cache.js'
import { makePlan } from '../runner/index.js'
import type { PreflightOutcome } from '../builders/index.js'
import type { RunnerFacts } from '../runner/index.js'
import { machinesFileOp } from '../runner/index.js'
import { writeReportFile } from '../report/index.js'
import { configureRunner, exportNixConfig } from '../runner/index.js'
import type { CanarySettings } from '../inputs/index.js'
import type { StoreReach } from '../runner/index.js'
import { appendHistory, type CanarySample, historyId, trendWarnings } from './trend.js'
import { inGroup, logInfo, logWarning, Phase, startGroup, StepError, writeSummary } from '../base/index.js'

/**
 * The canary action: for each builder separately, preflight it, build a derivation no store can hold yet on it and on
 * it only, move a payload there and back, read its free space, and judge every figure against the thresholds. One
 * builder's failure never hides another's figures; the step fails if any builder is unhealthy.
 */
export async function canary(
  facts: RunnerFacts,
  settings: CanarySettings,
  checked: PreflightOutcome
): Promise<void> {
  const thresholds = settings.canary
  const healthyIndexes = checked.results.flatMap((result, index) => (result.healthy ? [index] : []))
  const measured =
    checked.builders.length > 0
      ? await inGroup(Phase.Configure, () => buildOnEach({ facts, settings, checked, healthyIndexes }))
      : { runs: new Map<number, CanaryRun>(), builds: [], stores: new Map<string, StoreReach>() }
  const entries: CanaryEntry[] = checked.results.map((result, index) => {
    const run = measured.runs.get(index)
    return judgeCanary(
      result,
      run === undefined
        ? undefined
        : { ...run, payloadPath: measured.payloadPath, store: measured.stores.get(run.storeUri) },
      measured.builds,
      thresholds.payloadMb,
      thresholds
    )
  })
  await inGroup(Phase.Verdict, () => followTrend(entries, settings))
  await publishCanary(entries, settings)
  failOnUnhealthy(entries)
}

/** What the canary builds measured: each healthy builder's run (by its preflight result's index), and its store. */
interface Measured {
  runs: Map<number, CanaryRun>
  builds: BuildRecord[]
  stores: Map<string, StoreReach>
  payloadPath?: string
}

/**
 * Configures the runner for every healthy builder, then builds each one's canary on it alone, each build in a group of
 * its own: the machines file names only that builder for its build, so its canary can go nowhere else, and its figures
 * are its own. The hook re-reads the machines file for every build (docs/nix.md, "Where builds are offloaded from").
 */
async function buildOnEach(options: {
  facts: RunnerFacts
  settings: CanarySettings
  checked: PreflightOutcome
  healthyIndexes: number[]
}): Promise<Measured> {
  const { facts, settings, checked, healthyIndexes } = options
  const nonce = randomBytes(6).toString('hex')
  const token = newToken()
  const plan = makePlan(settings, configureBuilders(checked.builders, token), facts, token)
  const setup = await configureRunner(plan, facts)
  exportNixConfig(plan)
  const measured: Measured = {
    runs: new Map(),
    builds: [],
    stores: new Map(setup.stores.map(store => [store.storeUri, store]))
  }
  const targets: CanaryTarget[] = plan.builders.map((builder, index) => ({
    attribute: `b${index + 1}`,
    name: `nix-offload-canary-${nonce}-${index + 1}`,
    system: checked.results[healthyIndexes[index] ?? -1]?.system ?? builder.systems[0] ?? facts.system
  }))
  const expression = writeCanaryFiles(targets, nonce, settings.canary.payloadMb)
  const useMachines = async (chosen: typeof plan.builders): Promise<void> => {
    const ops: FileOp[] = [machinesFileOp(plan, chosen)]
    checkAll(ops, await fileOps(ops, { viaSudo: viaSudo(plan), keepGoing: false }))
  }
  const copies: CopyRecord[] = []
  for (const [index, builder] of plan.builders.entries()) {
    const target = targets[index]
    const resultIndex = healthyIndexes[index]
    if (target === undefined || resultIndex === undefined) continue
    const run: CanaryRun = { storeUri: builder.storeUri, drvName: target.name, copies: [] }
    measured.runs.set(resultIndex, run)
    if (measured.stores.get(builder.storeUri)?.ok !== true) continue
    startGroup(`${Phase.Build} on ${label(builder)}`)
    await useMachines([builder])
    const outcome = await runBuild(
      {
        ...settings,
        installables: [target.attribute],
        args: ['-f', expression],
        localJobs: 0,
        rebuild: false
      },
      process.env,
      { labels: new Map([[builder.storeUri, label(builder)]]) }
    )
    measured.builds.push(...outcome.builds)
    copies.push(...outcome.copies)
    // Only this builder is in the machines file for this build, so every copy in it is to or from this builder. The
    // copy activity's own store names cannot say which: Nix 2.26 gives a bare "ssh-ng://" (docs/nix.md, "Proving
    // where a derivation was built").
    run.copies = outcome.copies
  }
  await useMachines(plan.builders)
  measured.payloadPath = copies.find(copy => copy.path.endsWith(`-payload-${nonce}`))?.path
  return measured
}

/** Writes the payload and the canary expression into a fresh directory; returns the expression's path. */
function writeCanaryFiles(targets: CanaryTarget[], nonce: string, payloadMb: number): string {
  const directory = mkdtempSync(join(process.env.RUNNER_TEMP || tmpdir(), 'nix-offload-canary-'))
  const payloadFile = join(directory, `payload-${nonce}`)
  writeFileSync(payloadFile, randomBytes(Math.round(payloadMb * 1024 * 1024)))
  const expression = join(directory, 'canary.nix')
  writeFileSync(expression, renderCanaryExpression(targets, payloadFile, payloadMb))
  return expression
}

/** Each slower builder's warning; the step fails if any builder is unhealthy. */
function failOnUnhealthy(entries: CanaryEntry[]): void {
  const unhealthy = entries.filter(entry => !entry.healthy)
  for (const entry of entries) {
    for (const warning of entry.warnings)
      logWarning(warning, { title: `nix-offload canary: ${entry.builder} slower` })
  }
  if (unhealthy.length > 0) {
    throw new StepError(
      `Canary: ${unhealthy.length} of ${entries.length} builder(s) unhealthy: ` +
        unhealthy.map(entry => `${entry.builder}: ${entry.problems.join('; ')}`).join(' | '),
      'nix-offload canary: unhealthy'
    )
  }
  logInfo(`Canary: all ${entries.length} builder(s) healthy.`)
}

/** Compares this run with the saved recent runs (a warning, never a failure), then saves the history. */
async function followTrend(entries: CanaryEntry[], settings: CanarySettings): Promise<void> {
  const id = historyId(entries.map(entry => entry.builder))
  // A fixed path: @actions/cache ties an entry to the path it was saved from (RUNNER_TEMP is emptied every job).
  const directory = join(process.env.RUNNER_TEMP || tmpdir(), 'nix-offload-canary-history')
  mkdirSync(directory, { recursive: true })
  const { samples: history } = await restoreHistory(id, directory)
  const current: CanarySample[] = entries.map(entry => {
    const sample: CanarySample = { time: new Date().toISOString(), builder: entry.builder }
    if (entry.connectMs !== undefined) sample.connectMs = entry.connectMs
    if (entry.buildSeconds !== undefined) sample.buildSeconds = entry.buildSeconds
    if (entry.uploadSeconds !== undefined) sample.uploadSeconds = entry.uploadSeconds
    if (entry.downloadSeconds !== undefined) sample.downloadSeconds = entry.downloadSeconds
    return sample
  })
  for (const warning of trendWarnings(history, current, settings.canary.trendFactor)) {
    entries.find(entry => entry.builder === warning.builder)?.warnings.push(warning.message)
  }
  const runId = `${process.env.GITHUB_RUN_ID ?? Date.now()}-${process.env.GITHUB_RUN_ATTEMPT ?? '1'}`
  await saveHistory(id, directory, appendHistory(history, current), runId)
}

async function publishCanary(entries: CanaryEntry[], settings: CanarySettings): Promise<void> {
  const healthy = entries.filter(entry => entry.healthy).length
  core.setOutput(Output.Healthy, String(healthy === entries.length))
  core.setOutput(Output.BuildersHealthy, String(healthy))
  core.setOutput(
    Output.Report,
    writeReportFile({ mode: 'canary', thresholds: settings.canary, builders: entries })
  )
  if (settings.summary && process.env.GITHUB_STEP_SUMMARY) {
    await writeSummary(renderCanarySummary(entries, settings.canary))
  }
}
