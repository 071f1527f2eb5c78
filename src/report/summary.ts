import { label } from '../inputs/index.js'
import { formatBytes } from '../nix/index.js'
import type { PreflightResult } from '../builders/index.js'
import type { ConfigPath } from '../runner/index.js'
import { code, inline } from './markdown.js'
import type { BuildReport } from './report.js'

/** The job summary of a build: what ran where, with the proof, as GitHub-Flavored Markdown. */

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
    lines.push('', '| builder | derivations | busy |', '| --- | --- | --- |')
    for (const [where, share] of perBuilder(report)) {
      lines.push(`| ${inline(where)} | ${share.count} | ${formatDuration(share.ms)} |`)
    }
    if (report.buildWallMs !== undefined) {
      lines.push(
        '',
        `Building took ${formatDuration(report.buildWallMs)} from the first derivation's start to the last one's end; ` +
          "a builder's busy time counts its parallel builds once."
      )
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

/** How many derivations each builder (or the runner) built, and how long it was busy building them. */
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
  for (const result of results) {
    const note = accessNote(result)
    if (note !== undefined) lines.push('', `> **${inline(result.builder)}**: ${inline(note)}`)
  }
  const problems = results.filter(result => !result.healthy && result.message !== undefined)
  for (const result of problems)
    lines.push(
      '',
      `> **${inline(result.builder)}**: ${inline((result.message ?? '').split(/\r\n|\r|\n/)[0] ?? '')}`
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
