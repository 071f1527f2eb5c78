import type { BuildRecord, CopyRecord } from '../nix/index.js'
import type { PreflightResult } from '../builders/index.js'
import type { CanaryThresholds } from '../inputs/index.js'
import { code } from '../report/index.js'
import type { StoreReach } from '../runner/index.js'

/** Everything the canary measured about one builder, and its verdict. */
export interface CanaryEntry {
  builder: string
  healthy: boolean
  /** Each broken threshold or failure, with the measured figure; empty when healthy. */
  problems: string[]
  /** Trend warnings (not failures). */
  warnings: string[]
  storeUri?: string
  system?: string
  connectMs?: number
  /** Whole remote build of the canary derivation, as the log timed it (includes both copies). */
  buildSeconds?: number
  /** The machine the log says built the canary derivation. */
  builtOn?: string
  uploadSeconds?: number
  uploadMBps?: number
  downloadSeconds?: number
  downloadMBps?: number
  freeGb?: number
  preflight: PreflightResult
}

/** What the canary build produced for one builder. */
export interface CanaryRun {
  storeUri: string
  drvName: string
  /** The copies of this builder's own canary build, the only builder Nix could use for it. */
  copies: CopyRecord[]
  payloadPath?: string
  store?: StoreReach
}

export function judgeCanary(
  preflight: PreflightResult,
  run: CanaryRun | undefined,
  builds: BuildRecord[],
  payloadMb: number,
  thresholds: CanaryThresholds
): CanaryEntry {
  const entry: CanaryEntry = {
    builder: preflight.builder,
    healthy: false,
    problems: [],
    warnings: [],
    preflight
  }
  if (preflight.system !== undefined) entry.system = preflight.system
  if (preflight.connectMs !== undefined) entry.connectMs = preflight.connectMs
  if (preflight.storeFreeGb !== undefined) entry.freeGb = preflight.storeFreeGb
  const problems = entry.problems
  if (!preflight.healthy || run === undefined) {
    problems.push(`preflight: ${(preflight.message ?? preflight.cause ?? 'failed').split('\n')[0]}`)
    return entry
  }
  entry.storeUri = run.storeUri
  if (preflight.connectMs !== undefined && preflight.connectMs > thresholds.maxConnectMs) {
    problems.push(`connect took ${preflight.connectMs} ms, over max-connect-ms ${thresholds.maxConnectMs}`)
  }
  if (preflight.storeFreeGb !== undefined && preflight.storeFreeGb < thresholds.minFreeGb) {
    problems.push(
      `/nix/store has ${preflight.storeFreeGb} GB free, under min-free-gb ${thresholds.minFreeGb}`
    )
  }
  if (run.store !== undefined && !run.store.ok) {
    problems.push(
      `the daemon's route to the store failed: ${run.store.error ?? 'the store check failed without a message'}`
    )
    return entry
  }

  const build = builds.find(record => record.name === run.drvName)
  judgeCanaryBuild(entry, build, run, thresholds)
  if (payloadMb > 0 && build?.status === 'built') judgeTransfers(entry, run, payloadMb)
  entry.healthy = problems.length === 0
  return entry
}

/** Whether the canary derivation built on this builder, and within max-build-seconds. */
function judgeCanaryBuild(
  entry: CanaryEntry,
  build: BuildRecord | undefined,
  run: CanaryRun,
  thresholds: CanaryThresholds
): void {
  const problems = entry.problems
  if (build === undefined) {
    problems.push('the canary derivation was never started on it (see the errors above)')
    return
  }
  entry.builtOn = build.machine === '' ? 'local' : build.machine
  if (build.machine !== run.storeUri)
    problems.push(`the canary derivation ran on ${entry.builtOn}, not on this builder`)
  if (build.status !== 'built')
    problems.push(`the canary build ${build.status === 'failed' ? 'failed' : 'did not finish'}`)
  if (build.end !== undefined) {
    entry.buildSeconds = round((build.end - build.start) / 1000)
    if (entry.buildSeconds > thresholds.maxBuildSeconds) {
      problems.push(
        `the build took ${entry.buildSeconds} s, over max-build-seconds ${thresholds.maxBuildSeconds}`
      )
    }
  }
}

/** The payload's upload and the output's download rates, from this builder's copies in the log. */
function judgeTransfers(entry: CanaryEntry, run: CanaryRun, payloadMb: number): void {
  const problems = entry.problems
  const megabytes = (payloadMb * 1024 * 1024) / 1e6
  // By path, within this builder's run: the copy activity's store names are not always the builder's URI (Nix 2.26
  // names a bare "ssh-ng://").
  const upload = run.copies.find(copy => copy.path === run.payloadPath)
  const download = run.copies.find(copy => copy.path.endsWith(`-${run.drvName}`))
  if (upload?.end === undefined) problems.push('the payload upload to the builder was not seen in the log')
  else Object.assign(entry, rate('upload', upload.end - upload.start, megabytes))
  if (download?.end === undefined)
    problems.push('the output download from the builder was not seen in the log')
  else Object.assign(entry, rate('download', download.end - download.start, megabytes))
}

function rate(
  direction: 'upload' | 'download',
  ms: number,
  megabytes: number
): Partial<Pick<CanaryEntry, 'uploadSeconds' | 'uploadMBps' | 'downloadSeconds' | 'downloadMBps'>> {
  // A copy timed at 0 ms (two events in one read) still moved the data: count it as 1 ms.
  const seconds = Math.max(ms, 1) / 1000
  const mbps = round(megabytes / seconds)
  return direction === 'upload'
    ? { uploadSeconds: round(seconds), uploadMBps: mbps }
    : { downloadSeconds: round(seconds), downloadMBps: mbps }
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000
}

/** The canary's job summary: one row per builder with its figures and a clear verdict. */
export function renderCanarySummary(entries: CanaryEntry[], thresholds: CanaryThresholds): string {
  const healthy = entries.filter(entry => entry.healthy).length
  const lines = [
    '## nix-offload canary',
    '',
    healthy === entries.length
      ? `✅ **All ${entries.length} builder(s) healthy.**`
      : `❌ **${entries.length - healthy} of ${entries.length} builder(s) unhealthy.**`,
    '',
    '| builder | system | connect | build | upload | download | /nix/store free | verdict |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |'
  ]
  const show = (value: number | undefined, unit: string): string =>
    value === undefined ? '–' : `${value} ${unit}`
  for (const entry of entries) {
    const verdict = entry.healthy
      ? `✅ healthy${entry.warnings.length > 0 ? ' ⚠️ slower than usual' : ''}`
      : `❌ ${entry.problems.map(problem => code(problem)).join('; ')}`
    lines.push(
      `| ${code(entry.builder)} | ${entry.system === undefined ? '–' : code(entry.system)} | ${show(entry.connectMs, 'ms')} | ${show(entry.buildSeconds, 's')} | ` +
        `${show(entry.uploadMBps, 'MB/s')} | ${show(entry.downloadMBps, 'MB/s')} | ${show(entry.freeGb, 'GB')} | ` +
        `${verdict} |`
    )
  }
  lines.push(
    '',
    `Thresholds: connect ≤ ${thresholds.maxConnectMs} ms, build ≤ ${thresholds.maxBuildSeconds} s, ` +
      `free ≥ ${thresholds.minFreeGb} GB; trend warning above ${thresholds.trendFactor}× the recent median. ` +
      `Payload: ${thresholds.payloadMb} MiB each way.`
  )
  for (const entry of entries)
    for (const warning of entry.warnings) lines.push('', `> ⚠️ ${code(warning, false)}`)
  return lines.join('\n') + '\n'
}
