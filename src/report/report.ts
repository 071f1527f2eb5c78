import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { builderNamed, hostPort, label } from '../inputs/index.js'
import { type BuildRecord, type BuildStatus, buildTimes } from '../nix/index.js'
import type { ConfigPath, Plan } from '../runner/index.js'
import type { PreflightResult } from '../builders/index.js'
import type { ConfiguredBuilder } from '../inputs/index.js'
import type { StoreReach } from '../runner/index.js'
import { derivationTiming, type DerivationTiming, offloadOverhead, type OffloadOverhead } from './timing.js'

/** The `report` output's JSON file: what was configured and, per derivation, where it ran. No secret is in it. */
/** The runner side of the preflight. */
export interface RunnerEntry {
  nixVersion: string
  system: string
  /** 'daemon' (multi-user) or 'local' (single-user). */
  store: string
  user: string
  /** Whether the nix-daemon trusts `user` (always true without a daemon). */
  trusted: boolean
}

export interface BuildReport {
  runner?: RunnerEntry
  /** Absent when the action stopped before configuring anything. */
  configPath?: ConfigPath
  builders: BuilderEntry[]
  /** Each builder's preflight from the action's own SSH client. */
  preflight: PreflightResult[]
  /** Each configured builder's store, pinged as the account that offloads. */
  stores: StoreReach[]
  buildersHealthy: number
  derivations: DerivationEntry[]
  outPaths: string[]
  /** Derivations built successfully on a builder, and on the runner; those that failed, wherever they ran. */
  remoteBuilds: number
  localBuilds: number
  failedBuilds: number
  /** The build succeeded, at least one derivation was built, and every one on a builder. */
  confirmed: boolean
  /** From the first derivation's start to the last one's end, in ms. */
  buildWallMs?: number
  /**
   * Per machine as in `derivations[].machine` ('local' for the runner): the time at least one of its derivations was
   * building, in ms (parallel builds counted once).
   */
  busyMs?: Record<string, number>
  /** What the offload added over the derivations' building, summed over them (timing.ts says why not critical path). */
  overhead?: OffloadOverhead
  /** `hook` (Nix's distributed builds) or `remote-store` (the build ran in a builder's own store). */
  strategy?: 'hook' | 'remote-store'
  /** remote-store with `copy-back: false`: the outputs are on the builder only. */
  outputsOnBuilder?: boolean
  /** `fallback: local` built on the runner, and why. */
  fallback?: string
  /** Builders lost during the build, and where their unfinished work went. */
  failovers?: FailoverEntry[]
  /** `push-to`: what each builder copied to that store after the build. */
  pushes?: PushEntry[]
}

/** One builder's push of its outputs (`push-to`), run on the builder. */
export interface PushEntry {
  /** The builder's store URI. */
  builder: string
  /** The store pushed to, without its query (its settings, and any credentials in them). */
  to: string
  /** The secret key file on the builder that signed the copy (`push-key`), or the builder's own setting. */
  signedWith: string
  /** The outputs pushed, with their closure. */
  paths: string[]
  /** Paths in the outputs' closure, every one offered to the store (it skips those it has). */
  closurePaths: number
  /** Their NAR bytes, as the builder's store gives them. */
  narBytes: number
}

/** A builder lost mid-build (`retries`): when, why, and where its unfinished work went. */
export interface FailoverEntry {
  /** The lost builder's store URI. */
  builder: string
  /** When the attempt that lost it ended. */
  at: string
  /** The diagnosis cause, e.g. `connection-dropped`. */
  cause: string
  /** The first line of what Nix or the second look said. */
  reason: string
  /** Store URIs its work went to, 'local' for the runner, the same builder once it answered again; empty: nowhere. */
  movedTo: string[]
  /** The derivations it had not finished. */
  derivations: string[]
}

export interface BuilderEntry {
  /** The store URI Nix uses, and prints in its log. */
  storeUri: string
  /** NAR bytes sent to it and received from it during the build, from Nix's copy activities. */
  bytesSent?: number
  bytesReceived?: number
  host: string
  port: number
  user: string
  protocol: string
  systems: string[]
  maxJobs: number
  speedFactor: number
  supportedFeatures: string[]
  mandatoryFeatures: string[]
}

export interface DerivationEntry {
  drvPath: string
  name: string
  /** The builder's store URI, or "local" for the runner. */
  machine: string
  /** `host:port` of the builder, absent for local builds. */
  builder?: string
  start: string
  end?: string
  durationMs?: number
  status: BuildStatus
  attempts: number
  /** Upload, wait, build and download of this derivation, as far as the log tells them. */
  timing: DerivationTiming
  /** Where the proof comes from: Nix's log, and (remote-store) the builder's own store. */
  proof?: { log: boolean; store?: boolean; problem?: string }
}

export interface Checks {
  runner?: RunnerEntry
  preflight: PreflightResult[]
  stores: StoreReach[]
}

/** What a report is made from; each part may be missing when the action stopped before it. */
export interface ReportParts {
  /** Absent when the action stopped before configuring anything. */
  plan?: Plan
  builds?: BuildRecord[]
  outPaths?: string[]
  checks?: Checks
  /** remote-store: each derivation's proof, from the log and from the builder's store. */
  storeProofs?: ReadonlyMap<string, { log: boolean; store: boolean; problem?: string }>
  /** remote-store with `copy-back: false`. */
  outputsOnBuilder?: boolean
  /** NAR bytes moved, by builder store URI. */
  transfers?: ReadonlyMap<string, { sent: number; received: number }>
  /** Whether the build as a whole succeeded (a report without a build: true). */
  succeeded?: boolean
}

export function makeReport({
  plan,
  builds = [],
  outPaths = [],
  checks = { preflight: [], stores: [] },
  storeProofs,
  outputsOnBuilder = false,
  transfers,
  succeeded = true
}: ReportParts): BuildReport {
  const configured = plan?.builders ?? []
  const remoteStore = plan?.path === 'remote-store'
  const derivations = builds.map(build => {
    const entry = derivationEntry(build, builderNamed(configured, build.machine), remoteStore)
    if (build.machine !== '') entry.proof = storeProofs?.get(build.drvPath) ?? { log: true }
    return entry
  })
  const built = builds.filter(build => build.status === 'built')
  const localBuilds = built.filter(build => build.machine === '').length
  const failedBuilds = builds.filter(build => build.status === 'failed').length
  const report: BuildReport = {
    builders: configured.map(builder => {
      const entry = builderEntry(builder)
      const moved = transfers?.get(builder.storeUri)
      if (moved !== undefined) Object.assign(entry, { bytesSent: moved.sent, bytesReceived: moved.received })
      return entry
    }),
    preflight: checks.preflight,
    stores: checks.stores,
    buildersHealthy: checks.preflight.filter(result => result.healthy).length,
    derivations,
    outPaths,
    remoteBuilds: built.length - localBuilds,
    localBuilds,
    failedBuilds,
    confirmed: succeeded && failedBuilds === 0 && built.length > 0 && localBuilds === 0
  }
  if (builds.length > 0) {
    const times = buildTimes(builds)
    report.buildWallMs = times.wallMs
    report.overhead = offloadOverhead(derivations.map(entry => entry.timing))
    report.busyMs = Object.fromEntries(
      [...times.busyMs].map(([machine, ms]) => [reportedMachine(machine), ms])
    )
  }
  if (plan !== undefined) {
    report.configPath = plan.path
    report.strategy = plan.path === 'remote-store' ? 'remote-store' : 'hook'
  }
  if (outputsOnBuilder) report.outputsOnBuilder = true
  if (checks.runner !== undefined) report.runner = checks.runner
  return report
}

function builderEntry(builder: ConfiguredBuilder): BuilderEntry {
  return {
    storeUri: builder.storeUri,
    host: builder.host,
    port: builder.port,
    user: builder.user,
    protocol: builder.protocol,
    systems: builder.systems,
    maxJobs: builder.maxJobs,
    speedFactor: builder.speedFactor,
    supportedFeatures: builder.supportedFeatures,
    mandatoryFeatures: builder.mandatoryFeatures
  }
}

function derivationEntry(
  build: BuildRecord,
  builder: ConfiguredBuilder | undefined,
  remoteStore: boolean
): DerivationEntry {
  const entry: DerivationEntry = {
    drvPath: build.drvPath,
    name: build.name,
    machine: reportedMachine(build.machine),
    start: new Date(build.start).toISOString(),
    status: build.status,
    attempts: build.attempts,
    timing: derivationTiming(build, remoteStore)
  }
  if (builder !== undefined) entry.builder = hostPort(builder)
  if (build.end !== undefined) {
    entry.end = new Date(build.end).toISOString()
    entry.durationMs = build.end - build.start
  }
  return entry
}

/** A machine as the report names it: the ledger's empty name (a build on the runner) is 'local'. */
function reportedMachine(machine: string): string {
  return machine === '' ? 'local' : machine
}

/**
 * The proof in one line, for the log: how many derivations Nix's log shows built on each builder (named as the step
 * names it, never as the log does) and on the runner, how many failed, and how many a builder's own store confirms.
 */
export function proofLine(report: BuildReport): string {
  const names = new Map(report.builders.map(builder => [builder.storeUri, label(builder)]))
  const counts = new Map<string, number>()
  for (const derivation of report.derivations) {
    if (derivation.status !== 'built') continue
    const where =
      derivation.machine === 'local' ? 'the runner' : (names.get(derivation.machine) ?? 'another machine')
    counts.set(where, (counts.get(where) ?? 0) + 1)
  }
  const places = [...counts].map(([where, count], index) =>
    index === 0 ? `${count} derivation(s) built on ${where}` : `${count} on ${where}`
  )
  let line = `Proof: Nix's log shows ${places.length > 0 ? places.join(', ') : 'no derivation built'}`
  if (report.failedBuilds > 0) line += `; ${report.failedBuilds} failed`
  const asked = report.derivations.filter(derivation => derivation.proof?.store !== undefined)
  if (asked.length > 0) {
    const confirmed = asked.filter(derivation => derivation.proof?.store === true).length
    line += `; the builder's store confirms ${confirmed} of ${asked.length}`
  }
  return `${line}.`
}

/** Writes the `report` output's JSON file under RUNNER_TEMP and returns its path. */
export function writeReportFile(report: object): string {
  const directory = join(process.env.RUNNER_TEMP || tmpdir(), `nix-offload-${randomBytes(4).toString('hex')}`)
  mkdirSync(directory, { recursive: true })
  const file = join(directory, 'report.json')
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n')
  return file
}
