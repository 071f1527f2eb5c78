import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hostPort, label } from '../inputs/index.js'
import type { BuildRecord, BuildStatus } from '../nix/index.js'
import type { ConfigPath, Plan } from '../runner/index.js'
import type { PreflightResult } from '../builders/index.js'
import type { ConfiguredBuilder } from '../runner/index.js'
import type { StoreReach } from '../runner/index.js'
import { code, inline } from './markdown.js'

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
  /** `hook` (Nix's distributed builds) or `remote-store` (the build ran in a builder's own store). */
  strategy?: 'hook' | 'remote-store'
  /** remote-store with `copy-back: false`: the outputs are on the builder only. */
  outputsOnBuilder?: boolean
  /** `fallback: local` built on the runner, and why. */
  fallback?: string
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
  /** Where the proof comes from: Nix's log, and (remote-store) the builder's own store. */
  proof?: { log: boolean; store?: boolean; problem?: string }
}

export interface Checks {
  runner?: RunnerEntry
  preflight: PreflightResult[]
  stores: StoreReach[]
}

export function makeReport(
  plan: Plan | undefined,
  builds: BuildRecord[],
  outPaths: string[],
  checks: Checks = { preflight: [], stores: [] },
  storeProofs?: ReadonlyMap<string, { log: boolean; store: boolean; problem?: string }>,
  outputsOnBuilder = false,
  transfers?: ReadonlyMap<string, { sent: number; received: number }>,
  succeeded = true
): BuildReport {
  const configured = plan?.builders ?? []
  const byUri = new Map(configured.map(builder => [builder.storeUri, builder]))
  const derivations = builds.map(build => {
    const entry = derivationEntry(build, byUri.get(build.machine))
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

function derivationEntry(build: BuildRecord, builder: ConfiguredBuilder | undefined): DerivationEntry {
  const entry: DerivationEntry = {
    drvPath: build.drvPath,
    name: build.name,
    machine: build.machine === '' ? 'local' : build.machine,
    start: new Date(build.start).toISOString(),
    status: build.status,
    attempts: build.attempts
  }
  if (builder !== undefined) entry.builder = hostPort(builder)
  if (build.end !== undefined) {
    entry.end = new Date(build.end).toISOString()
    entry.durationMs = build.end - build.start
  }
  return entry
}

const PATH_TEXT: Record<ConfigPath, string> = {
  'trusted-client': 'the runner user is trusted by the nix-daemon: builders passed through NIX_CONFIG',
  'machines-file': "the runner user is not trusted: builders written to the daemon's machines file",
  'daemon-config': "builders written to the daemon's nix.conf, daemon restarted",
  'single-user': 'no nix-daemon: nix offloads as the runner user, builders passed through NIX_CONFIG',
  'remote-store':
    "built in the builder's own store by the runner user's nix (an ssh config of the action's, no root files)"
}

/** The job summary, as Markdown. */
/** NAR bytes for people: B, KiB, MiB, GiB. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`
}

export function renderSummary(report: BuildReport, built: boolean): string {
  const lines = ['## nix-offload', '']
  if (report.fallback !== undefined) {
    lines.push(
      `⚠️ **Built on the runner** (\`fallback: local\`): ${inline(report.fallback)}. Nothing was offloaded.`,
      ''
    )
  } else if (report.configPath === undefined) {
    lines.push('❌ **Stopped before configuring the runner**: a builder failed the preflight.', '')
  } else if (!built) {
    lines.push(
      "Configured the runner only (no `installables` or `args`): later steps' `nix build` offload to:",
      ''
    )
  } else if (report.derivations.length === 0) {
    lines.push(
      '**Nothing was built**: every output was already valid, so this run proves nothing about where builds run. ' +
        'Build a derivation whose outputs exist nowhere yet (e.g. a nonce in an attribute) for a proof.',
      ''
    )
  } else if (report.failedBuilds > 0) {
    lines.push(
      `❌ **${report.failedBuilds} derivation(s) failed**; ${report.remoteBuilds} built on a builder, ` +
        `${report.localBuilds} on the runner.`,
      ''
    )
  } else if (report.confirmed) {
    lines.push(
      `✅ **Confirmed**: all ${report.remoteBuilds} derivation(s) were built on a builder, as Nix's log shows.`,
      ''
    )
  } else {
    lines.push(
      `⚠️ **${report.localBuilds} of ${report.derivations.length} derivation(s) were built on the runner**, ` +
        `${report.remoteBuilds} on a builder.`,
      ''
    )
  }
  if (report.runner !== undefined) {
    const { runner } = report
    const daemon =
      runner.store === 'daemon'
        ? `the nix-daemon ${runner.trusted ? 'trusts' : 'does **not** trust'} ${inline(runner.user)}`
        : `no nix-daemon (single-user, as ${inline(runner.user)})`
    lines.push(`Runner: Nix ${inline(runner.nixVersion)} on ${inline(runner.system)}; ${daemon}.`, '')
  }
  if (report.preflight.length > 0) lines.push(...renderPreflight(report.preflight), '')
  if (report.builders.length > 0) {
    lines.push(
      '| builder | store URI | systems | max jobs | speed | features |',
      '| --- | --- | --- | --- | --- | --- |'
    )
  }
  for (const builder of report.builders) {
    const features = [...builder.supportedFeatures, ...builder.mandatoryFeatures.map(f => `${f} (mandatory)`)]
    lines.push(
      `| ${inline(label(builder))} | ${code(builder.storeUri)} | ${inline(builder.systems.join(', '))} | ` +
        `${builder.maxJobs} | ${builder.speedFactor} | ${inline(features.join(', ')) || '–'} |`
    )
  }
  if (report.configPath !== undefined) {
    lines.push('', `Strategy: \`${report.strategy ?? 'hook'}\`. How: ${PATH_TEXT[report.configPath]}.`)
  }
  if (report.outputsOnBuilder === true) {
    lines.push('', "The outputs stay in the builder's store (`copy-back: false`).")
  }
  if (report.derivations.length > 0 && report.builders.length > 0) {
    lines.push('', '| builder | derivations | build time |', '| --- | --- | --- |')
    for (const [where, share] of perBuilder(report)) {
      lines.push(`| ${inline(where)} | ${share.count} | ${formatDuration(share.ms)} |`)
    }
  }
  const moved = report.builders.filter(builder => builder.bytesSent !== undefined)
  if (built && moved.length > 0) {
    lines.push('', '| builder | sent to it | received from it |', '| --- | --- | --- |')
    for (const builder of moved) {
      lines.push(
        `| ${inline(label(builder))} | ${formatBytes(builder.bytesSent ?? 0)} | ${formatBytes(builder.bytesReceived ?? 0)} |`
      )
    }
  }
  if (report.derivations.length > 0) {
    // In a builder's own store the proof has two sources: Nix's log, and that store's record of the outputs.
    const withStore = report.strategy === 'remote-store'
    lines.push(
      '',
      `| derivation | built on | duration | status |${withStore ? ' proof |' : ''}`,
      `| --- | --- | --- | --- |${withStore ? ' --- |' : ''}`
    )
    for (const derivation of report.derivations) {
      const where =
        derivation.builder !== undefined
          ? inline(derivation.builder)
          : derivation.machine === 'local'
            ? '**the runner**'
            : inline(derivation.machine)
      const duration = derivation.durationMs === undefined ? '–' : formatDuration(derivation.durationMs)
      const proof = !withStore
        ? ''
        : derivation.proof?.store === true
          ? ' log + builder store |'
          : derivation.proof?.store === false
            ? ` log only: ${inline(derivation.proof.problem ?? 'the store disagrees')} |`
            : ' log |'
      lines.push(
        `| ${code(derivation.name)} | ${where} | ${duration} | ${inline(derivation.status)} |${proof}`
      )
    }
  }
  if (report.outPaths.length > 0) {
    lines.push(
      '',
      '<details><summary>Out paths</summary>',
      '',
      ...report.outPaths.map(p => `- ${code(p, false)}`),
      '',
      '</details>'
    )
  }
  return lines.join('\n') + '\n'
}

/** How many derivations each builder (or the runner) built, and their summed build time. */
function perBuilder(report: BuildReport): Map<string, { count: number; ms: number }> {
  const shares = new Map<string, { count: number; ms: number }>()
  for (const builder of report.builders) shares.set(label(builder), { count: 0, ms: 0 })
  for (const derivation of report.derivations) {
    const builder = report.builders.find(entry => entry.storeUri === derivation.machine)
    // On a daemon shared by several jobs (machines-file path), Nix may send a derivation to another job's builder.
    const where =
      builder !== undefined
        ? label(builder)
        : derivation.machine === 'local'
          ? 'the runner'
          : derivation.machine
    const share = shares.get(where) ?? { count: 0, ms: 0 }
    share.count += 1
    share.ms += derivation.durationMs ?? 0
    shares.set(where, share)
  }
  return shares
}

function renderPreflight(results: PreflightResult[]): string[] {
  const lines = [
    '| preflight | TCP | host key | key | Nix | builder user | verdict |',
    '| --- | --- | --- | --- | --- | --- | --- |'
  ]
  for (const result of results) {
    const trust =
      result.builderUserTrusted === undefined ? '–' : result.builderUserTrusted ? 'trusted' : 'not trusted'
    const detected =
      result.detected === undefined ? '' : ` (detected: ${inline(detectedText(result.detected))})`
    const verdict = result.healthy ? `✅ healthy${detected}` : `❌ ${inline(result.cause ?? 'unhealthy')}`
    lines.push(
      `| ${inline(result.builder)} | ${result.connectMs === undefined ? '–' : `${result.connectMs} ms`} | ` +
        `${result.hostKey === undefined ? '–' : `${code(result.hostKey.presented)}${result.hostKey.matches ? ' ✓' : ' ✗'}`} | ` +
        `${result.authenticated === undefined ? '–' : `${inline(result.keyType)} ${result.authenticated ? '✓' : '✗'}`} | ` +
        `${result.nixVersion ? inline(`${result.remoteProgram ?? ''} ${result.nixVersion}`) : '–'} | ${trust} | ${verdict} |`
    )
  }
  const problems = results.filter(result => !result.healthy && result.message !== undefined)
  for (const result of problems)
    lines.push(
      '',
      `> **${inline(result.builder)}**: ${inline((result.message ?? '').split(/\r\n|\r|\n/)[0] ?? '')}`
    )
  return lines
}

function detectedText(detected: NonNullable<PreflightResult['detected']>): string {
  const parts: string[] = []
  if (detected.systems !== undefined) parts.push(`systems ${detected.systems.join(', ')}`)
  if (detected.supportedFeatures !== undefined)
    parts.push(`features ${detected.supportedFeatures.join(', ') || 'none'}`)
  if (detected.maxJobs !== undefined) parts.push(`max-jobs ${detected.maxJobs}`)
  return parts.join('; ')
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)} s`
  const seconds = Math.round(ms / 1000)
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`
}

/** Writes the `report` output's JSON file under RUNNER_TEMP and returns its path. */
export function writeReportFile(report: object): string {
  const directory = join(process.env.RUNNER_TEMP || tmpdir(), `nix-offload-${randomBytes(4).toString('hex')}`)
  mkdirSync(directory, { recursive: true })
  const file = join(directory, 'report.json')
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n')
  return file
}
