import { builderNamed, byFreeCapacity, freeCapacity, label } from '../inputs/index.js'
import { formatBytes } from '../nix/index.js'
import type { PreflightResult } from '../builders/index.js'
import type { ConfigPath } from '../runner/index.js'
import { code, inline } from './markdown.js'
import type { BuildReport, PushEntry } from './report.js'

/** The job summary of a build: what ran where, with the proof, as GitHub-Flavored Markdown. */

/** Where the runner's own builds are counted, beside the builders' labels. */
const THE_RUNNER = 'the runner'

/** Values in a table cell, each its own code span: the empty ones left out. */
function codes(values: readonly string[], separator = ', '): string {
  return values
    .filter(value => value !== '')
    .map(value => code(value))
    .join(separator)
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
export function renderSummary(report: BuildReport, built: boolean): string {
  const lines = ['## nix-offload', '', headline(report, built), '']
  const overhead = overheadLine(report)
  if (overhead !== undefined) lines.push(overhead, '')
  if (report.runner !== undefined) lines.push(runnerLine(report.runner), '')
  if (report.preflight.length > 0) lines.push(...renderPreflight(report.preflight), '')
  lines.push(...buildersTable(report))
  if (report.configPath !== undefined) {
    lines.push('', `Strategy: \`${report.strategy ?? 'hook'}\`. How: ${PATH_TEXT[report.configPath]}.`)
  }
  if (report.outputsOnBuilder === true) {
    lines.push('', "The outputs stay in the builder's store (`copy-back: false`).")
  }
  if (report.failovers !== undefined && report.failovers.length > 0) lines.push(...failoverTable(report))
  if (report.derivations.length > 0 && report.builders.length > 0) lines.push(...busyTable(report))
  if (built) lines.push(...transfersTable(report))
  if (report.pushes !== undefined && report.pushes.length > 0) lines.push(...pushTable(report.pushes))
  if (report.derivations.length > 0) lines.push(...derivationsTable(report))
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

/** Each builder lost during the build: when, why, and where its unfinished work went. */
function failoverTable(report: BuildReport): string[] {
  const where = (movedTo: string[]): string =>
    movedTo.length === 0 ? 'nowhere: no builder that fits was left' : movedTo.map(to => code(to)).join(', ')
  return [
    '',
    '### Failover',
    '',
    '| lost builder | when | cause | its work went to | unfinished |',
    '| --- | --- | --- | --- | --- |',
    ...(report.failovers ?? []).map(
      entry =>
        `| ${code(entry.builder)} | ${entry.at} | ${code(entry.cause)}: ${code(entry.reason)} | ` +
        `${where(entry.movedTo)} | ${entry.derivations.length} |`
    )
  ]
}

/** The first line: what the step did, and whether it proves where the builds ran. */
function headline(report: BuildReport, built: boolean): string {
  if (report.fallback !== undefined) {
    return `⚠️ **Built on the runner** (\`fallback: local\`): ${code(report.fallback, false)}. Nothing was offloaded.`
  }
  if (report.configPath === undefined) {
    return '❌ **Stopped before configuring the runner**: a builder failed the preflight.'
  }
  if (!built)
    return "Configured the runner only (no `installables` or `args`): later steps' `nix build` offload to:"
  if (report.derivations.length === 0) {
    return (
      '**Nothing was built**: every output was already valid, so this run proves nothing about where builds run. ' +
      'Build a derivation whose outputs exist nowhere yet (e.g. a nonce in an attribute) for a proof.'
    )
  }
  if (report.failedBuilds > 0) {
    return (
      `❌ **${report.failedBuilds} derivation(s) failed**; ${report.remoteBuilds} built on a builder, ` +
      `${report.localBuilds} on the runner.`
    )
  }
  if (report.confirmed) {
    return `✅ **Confirmed**: all ${report.remoteBuilds} derivation(s) were built on a builder, as Nix's log shows.`
  }
  return (
    `⚠️ **${report.localBuilds} of ${report.derivations.length} derivation(s) were built on the runner**, ` +
    `${report.remoteBuilds} on a builder.`
  )
}

function runnerLine(runner: NonNullable<BuildReport['runner']>): string {
  const daemon =
    runner.store === 'daemon'
      ? `the nix-daemon ${runner.trusted ? 'trusts' : 'does **not** trust'} ${code(runner.user, false)}`
      : `no nix-daemon (single-user, as ${code(runner.user, false)})`
  return `Runner: Nix ${code(runner.nixVersion, false)} on ${code(runner.system, false)}; ${daemon}.`
}

/** The configured builders as Nix was given them. */
function buildersTable(report: BuildReport): string[] {
  if (report.builders.length === 0) return []
  const lines = [
    '| builder | store URI | systems | max jobs | speed | features |',
    '| --- | --- | --- | --- | --- | --- |'
  ]
  for (const builder of report.builders) {
    const features = [
      ...builder.supportedFeatures.map(feature => code(feature)),
      ...builder.mandatoryFeatures.map(feature => `${code(feature)} (mandatory)`)
    ]
    lines.push(
      `| ${code(label(builder))} | ${code(builder.storeUri)} | ${codes(builder.systems)} | ` +
        `${builder.maxJobs} | ${builder.speedFactor} | ${features.join(', ') || '–'} |`
    )
  }
  return lines
}

/** How many derivations each builder built and how long it was busy, and the build's wall time. */
function busyTable(report: BuildReport): string[] {
  const lines = ['', '| builder | derivations | busy |', '| --- | --- | --- |']
  for (const [where, share] of perBuilder(report)) {
    lines.push(
      `| ${where === THE_RUNNER ? where : code(where)} | ${share.count} | ${formatDuration(share.ms)} |`
    )
  }
  if (report.buildWallMs !== undefined) {
    lines.push(
      '',
      `Building took ${formatDuration(report.buildWallMs)} from the first derivation's start to the last one's end; ` +
        "a builder's busy time counts its parallel builds once."
    )
  }
  return lines
}

/** The NAR bytes sent to and received from each builder. */
function transfersTable(report: BuildReport): string[] {
  const moved = report.builders.filter(builder => builder.bytesSent !== undefined)
  if (moved.length === 0) return []
  const lines = ['', '| builder | sent to it | received from it |', '| --- | --- | --- |']
  for (const builder of moved) {
    lines.push(
      `| ${code(label(builder))} | ${formatBytes(builder.bytesSent ?? 0)} | ${formatBytes(builder.bytesReceived ?? 0)} |`
    )
  }
  return lines
}

/** What each builder pushed (`push-to`), from its own store: the runner carried none of it. */
function pushTable(pushes: PushEntry[]): string[] {
  const lines = [
    '',
    '### Pushed (`push-to`)',
    '',
    '| from builder | to | outputs | closure | NAR bytes | signed with |',
    '| --- | --- | --- | --- | --- | --- |'
  ]
  for (const push of pushes) {
    const outputs = push.paths.map(path => code(path)).join('<br>')
    lines.push(
      `| ${code(push.builder)} | ${code(push.to)} | ${outputs} | ${push.closurePaths} paths | ` +
        `${formatBytes(push.narBytes)} | ${code(push.signedWith)} |`
    )
  }
  return lines
}

/** Each derivation: where it ran, for how long, its upload, wait, build and download, and (in a builder's store) its proof. */
function derivationsTable(report: BuildReport): string[] {
  // In a builder's own store the proof has two sources: Nix's log, and that store's record of the outputs.
  const withStore = report.strategy === 'remote-store'
  const lines = [
    '',
    `| derivation | built on | duration | status | upload | wait | build | download |${withStore ? ' proof |' : ''}`,
    `| --- | --- | --- | --- | --- | --- | --- | --- |${withStore ? ' --- |' : ''}`
  ]
  for (const derivation of report.derivations) {
    const where = whereBuilt(derivation)
    const duration = derivation.durationMs === undefined ? '–' : formatDuration(derivation.durationMs)
    lines.push(
      `| ${code(derivation.name)} | ${where} | ${duration} | ${inline(derivation.status)} |` +
        timingCells(derivation.timing) +
        (withStore ? proofCell(derivation) : '')
    )
  }
  return lines
}

/**
 * What the offload added over the building, summed over the derivations (the log names no inputs, so there is no
 * critical path to follow); in a builder's store, the copies were one each way for the whole build.
 */
function overheadLine(report: BuildReport): string | undefined {
  const sums = report.overhead
  if (sums === undefined || report.derivations.length === 0) return undefined
  if (report.strategy === 'remote-store') {
    return (
      "The offload's upload and download were one copy each way for the whole build, shared by all derivations: " +
      'their time is not split per derivation (bytes per builder below).'
    )
  }
  if (sums.uncounted === report.derivations.length) {
    return "The offload's overhead is unknown: the log gives no derivation's upload, wait, build and download."
  }
  const added = sums.uploadMs + sums.waitMs + sums.downloadMs
  const left =
    sums.uncounted === 0
      ? ''
      : ` ${sums.uncounted} derivation(s) left out: their figures are unknown or shared.`
  return (
    `Offload added ${formatDuration(added)} over ${formatDuration(sums.buildMs)} of building (upload ${formatDuration(sums.uploadMs)}, ` +
    `waiting ${formatDuration(sums.waitMs)}, download ${formatDuration(sums.downloadMs)}), summed over the ` +
    `derivations.${left}`
  )
}

/** A derivation's upload, wait, build and download: "unknown" where the log does not say, "shared" where not split. */
function timingCells(timing: BuildReport['derivations'][number]['timing']): string {
  const shared = timing.shared ?? []
  const time = (ms?: number): string => (ms === undefined ? 'unknown' : formatDuration(ms))
  const copy = (kind: 'upload' | 'download', ms?: number, bytes?: number): string => {
    if (shared.includes(kind)) return 'shared'
    return ms === undefined || bytes === undefined ? time(ms) : `${formatDuration(ms)}, ${formatBytes(bytes)}`
  }
  return (
    ` ${copy('upload', timing.uploadMs, timing.uploadBytes)} | ${time(timing.waitMs)} | ${time(timing.buildMs)} | ` +
    `${copy('download', timing.downloadMs, timing.downloadBytes)} |`
  )
}

function whereBuilt(derivation: BuildReport['derivations'][number]): string {
  if (derivation.builder !== undefined) return code(derivation.builder)
  return derivation.machine === 'local' ? '**the runner**' : code(derivation.machine)
}

function proofCell(derivation: BuildReport['derivations'][number]): string {
  if (derivation.proof?.store === true) return ' log + builder store |'
  if (derivation.proof?.store === false) {
    const problem = derivation.proof.problem
    return ` log only: ${problem === undefined ? 'the store disagrees' : code(problem)} |`
  }
  return ' log |'
}

/** How many derivations each builder (or the runner) built, and how long it was busy building them. */
function perBuilder(report: BuildReport): Map<string, { count: number; ms: number }> {
  const shares = new Map<string, { count: number; ms: number }>()
  for (const builder of report.builders) shares.set(label(builder), { count: 0, ms: 0 })
  for (const derivation of report.derivations) {
    const builder = builderNamed(report.builders, derivation.machine)
    // On a daemon shared by several jobs (machines-file path), Nix may send a derivation to another job's builder.
    const where =
      builder !== undefined
        ? label(builder)
        : derivation.machine === 'local'
          ? THE_RUNNER
          : derivation.machine
    const share = shares.get(where) ?? { count: 0, ms: 0 }
    share.count += 1
    const busy = report.busyMs?.[derivation.machine]
    share.ms = busy ?? share.ms + (derivation.durationMs ?? 0)
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
    const detected = result.detected === undefined ? '' : ` (detected: ${detectedText(result.detected)})`
    const verdict = result.healthy
      ? `✅ healthy${detected}`
      : `❌ ${result.cause === undefined ? 'unhealthy' : code(result.cause)}`
    const nix = result.nixVersion ? codes([result.remoteProgram ?? '', result.nixVersion], ' ') : '–'
    lines.push(
      `| ${code(result.builder)} | ${result.connectMs === undefined ? '–' : `${result.connectMs} ms`} | ` +
        `${result.hostKey === undefined ? '–' : `${code(result.hostKey.presented)}${result.hostKey.matches ? ' ✓' : ' ✗'}`} | ` +
        `${result.authenticated === undefined ? '–' : `${code(result.keyType)} ${result.authenticated ? '✓' : '✗'}`} | ` +
        `${nix} | ${trust} | ${verdict} |`
    )
  }
  for (const result of results) {
    const note = accessNote(result)
    if (note !== undefined) lines.push('', `> **${code(result.builder, false)}**: ${inline(note)}`)
  }
  lines.push(...loadNotes(results))
  const problems = results.filter(result => !result.healthy && result.message !== undefined)
  for (const result of problems)
    lines.push(
      '',
      `> **${code(result.builder, false)}**: ${code((result.message ?? '').split(/\r\n|\r|\n/)[0] ?? '', false)}`
    )
  return lines
}

/** What a key that runs only one of Nix's programs left unasked, e.g. "key runs only nix-daemon --stdio: …". */
export function accessNote(result: PreflightResult): string | undefined {
  if (result.access === undefined || result.access === 'shell') return undefined
  const program = result.access === 'nix-daemon' ? 'nix-daemon --stdio' : 'nix-store --serve'
  const unasked = result.unasked?.length ? `; not asked: ${result.unasked.join(', ')}` : ''
  return `key runs only ${program}: systems, features and max-jobs from the inputs${unasked}`
}

/** The builders passed over for disk space, and the order load put the others in, which the routing followed. */
function loadNotes(results: PreflightResult[]): string[] {
  const lines: string[] = []
  for (const result of results) {
    if (result.passedOver !== undefined)
      lines.push('', `> **${code(result.builder, false)}**: ⚠️ passed over: ${inline(result.passedOver)}`)
  }
  const admitted = results.filter(result => result.healthy && result.passedOver === undefined)
  if (admitted.length < 2 || admitted.every(result => freeCapacity(result.load) === undefined)) return lines
  const order = byFreeCapacity(admitted).map(result => {
    const free = freeCapacity(result.load)
    return `${code(result.builder, false)} ${free === undefined ? 'unknown (counted as average)' : free.toFixed(1)}${loadText(result)}`
  })
  lines.push(
    '',
    `> Builders by free capacity, cores / (1 + load), most first: ${order.join(', ')}. \`remote-store\` sends each ` +
      "installable to the first that fits it; the hook's machines file scales each speed-factor by it."
  )
  return lines
}

function loadText({ load }: PreflightResult): string {
  const parts: string[] = []
  if (load?.loadAverage !== undefined) parts.push(`load ${load.loadAverage}`)
  if (load?.cores !== undefined) parts.push(`${load.cores} cores`)
  if (load?.runningBuilds !== undefined)
    parts.push(`${load.runningBuilds} running build${load.runningBuilds === 1 ? '' : 's'}`)
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`
}

function detectedText(detected: NonNullable<PreflightResult['detected']>): string {
  const parts: string[] = []
  if (detected.systems !== undefined) parts.push(`systems ${codes(detected.systems)}`)
  if (detected.supportedFeatures !== undefined)
    parts.push(`features ${codes(detected.supportedFeatures) || 'none'}`)
  if (detected.maxJobs !== undefined) parts.push(`max-jobs ${detected.maxJobs}`)
  return parts.join('; ')
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)} s`
  const seconds = Math.round(ms / 1000)
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`
}
