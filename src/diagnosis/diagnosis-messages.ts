import { builderNamed } from '../inputs/index.js'
import { derivationName, fits, type MachineNeed } from '../nix/index.js'
import type { BuilderOffer, Diagnosis, DiagnosisContext, Finding } from './diagnosis-types.js'

/** The messages the rules write: each names the cause, the builder where known, and the fix. */

export function unreachable(printed: string, reason: string, context: DiagnosisContext): Diagnosis {
  const offer = builderNamed(context.builders, printed)
  const uri = offer?.storeUri ?? printed
  const label = offer?.label ?? uri
  const pinInput = offer?.pinInput
  const pin = pinInput === undefined ? '`host-public-key` / `known-hosts`' : `\`${pinInput}\``
  const said = oneLine(reason)
  const lines = [
    `Builder ${label} is unreachable: Nix's SSH connection to ${uri} failed before the build${said === '' ? '' : ` (${said})`}.`
  ]
  const hint = sshHint(reason, pin)
  if (hint !== undefined) lines.push(hint)
  lines.push(
    "ssh's own error is not in this log: the nix-daemon runs ssh as root and logs it (`journalctl -u nix-daemon`, " +
      'macOS: /var/log/nix-daemon.log).',
    `Likely causes: the host is down or unreachable; wrong port; its host key changed (update ${pin}); ` +
      "the key was refused (the builder user's authorized_keys); nix-daemon (ssh-ng) or nix-store (ssh) " +
      "not on the builder's non-interactive PATH (the `remote-program` input can name where it is) or not where " +
      "`remote-program` says. The action's preflight normally catches these first, so the builder changed or went " +
      'away after it.'
  )
  return {
    cause: 'builder-unreachable',
    severity: 'error',
    title: `Builder unreachable: ${label}`,
    message: lines.join('\n'),
    machine: uri
  }
}

/** ssh's own words, when Nix passed them on (ssh:// stores drain ssh's stderr into the message in newer Nix). */
function sshHint(reason: string, pin: string): string | undefined {
  const hints: [RegExp, string][] = [
    [
      /Host key verification failed|HOST IDENTIFICATION HAS CHANGED/i,
      `ssh rejected the builder's host key: update ${pin}.`
    ],
    [
      /Permission denied/i,
      "The builder refused the key: add its public key to the builder user's authorized_keys."
    ],
    [/Connection refused/i, 'Nothing listens on that port: check `port` and that sshd runs.'],
    [
      /Could not resolve hostname|Name or service not known/i,
      'The host name does not resolve: check `host`.'
    ],
    [/timed out|No route to host/i, 'The host did not answer: it is down or a firewall drops the traffic.'],
    [
      /command not found|No such file or directory/i,
      "Nix is not on the builder's non-interactive PATH: set `remote-program: /nix/var/nix/profiles/default/bin` " +
        '(the directory where `command -v nix-daemon` finds it in a login shell on the builder), or add it to PATH there.'
    ]
  ]
  return hints.find(([pattern]) => pattern.test(reason))?.[1]
}

export function byHost(host: string, text: string, context: DiagnosisContext): Finding[] {
  const bare = (s: string): string =>
    s
      .replace(/^[a-z-]+:\/\//, '')
      .replace(/^[^@]*@/, '')
      .replace(/\?.*$/, '')
  const offer = context.builders.find(b => bare(b.storeUri) === bare(host) || b.label === host)
  return [unreachable(offer?.storeUri ?? host, text, context)]
}

export function dropped(
  reason: string,
  drv: string | undefined,
  uri: string | undefined,
  context: DiagnosisContext
): Diagnosis {
  const label = uri === undefined ? 'a builder' : `builder ${labelOf(uri, context)}`
  const what = drv === undefined ? 'a build' : derivationName(drv)
  const diagnosis: Diagnosis = {
    cause: 'connection-dropped',
    severity: 'error',
    title: `Connection lost to ${label}`,
    message: [
      `Lost the connection to ${label} while building ${what} (${oneLine(reason)}).`,
      "The SSH connection or the builder's nix-daemon died mid-build: a network drop, the builder rebooting or running " +
        "out of memory. ssh's own error is in the runner's nix-daemon log (`journalctl -u nix-daemon`); check the " +
        "builder's memory and its own nix-daemon log, then re-run."
    ].join('\n')
  }
  if (uri !== undefined) diagnosis.machine = uri
  if (drv !== undefined) diagnosis.drvPath = drv
  return diagnosis
}

export function buildFailed(drv: string, uri: string, reason: string, context: DiagnosisContext): Diagnosis {
  const label = labelOf(uri, context)
  const status =
    /failed with exit code \d+|failed due to signal \d+(?: \([^)]*\))?/.exec(reason)?.[0] ?? 'failed'
  const fromContext = context.lastLogLines(drv)
  const tail = (fromContext.length > 0 ? fromContext : logTailOf(reason)).slice(-10)
  const lines = [
    `Derivation ${derivationName(drv)} ${status} on builder ${label}.`,
    "The derivation's own build failed there; offloading worked. Fix the derivation (or its inputs), then re-run."
  ]
  if (/signal 9\b/.test(status))
    lines.push('Signal 9 is often the out-of-memory killer: the builder may need more memory.')
  if (tail.length > 0) lines.push(`Last ${tail.length} log lines:`, ...tail.map(line => `> ${line}`))
  lines.push(`Full log: nix log ${drv}`)
  return {
    cause: 'build-failed-on-builder',
    severity: 'error',
    title: `Build failed on ${label}: ${derivationName(drv)}`,
    message: lines.join('\n'),
    machine: uri,
    drvPath: drv
  }
}

export function unsignedInputRefused(
  path: string,
  drv: string | undefined,
  uri: string | undefined,
  context: DiagnosisContext
): Finding {
  const label = uri === undefined ? 'a builder' : `builder ${labelOf(uri, context)}`
  const user = uri === undefined ? undefined : userOf(uri)
  const finding: Finding = {
    cause: 'builder-user-untrusted',
    severity: 'error',
    title: `Not trusted on ${label}`,
    message: [
      `${capitalised(label)} refused ${derivationName(path)}, a path built on the runner: its Nix does not trust the ` +
        `SSH user${user === undefined ? '' : ` ${user}`}, and takes paths built elsewhere only from a trusted user or ` +
        'signed by a key it trusts.',
      `Fix: on the builder, add "trusted-users = ${user ?? '<user>'}" to /etc/nix/nix.conf (NixOS: ` +
        'nix.settings.trusted-users) and restart its nix-daemon; or have the builder build those inputs too: ' +
        '`local-jobs: 0`, and no earlier step that builds them on the runner.'
    ].join('\n')
  }
  if (uri !== undefined) finding.machine = uri
  if (drv !== undefined) finding.drvPath = drv
  return finding
}

export function unsignedFromBuilderStore(path: string, uri: string, context: DiagnosisContext): Finding {
  const label = labelOf(uri, context)
  return {
    cause: 'unsigned-from-builder-store',
    severity: 'error',
    title: 'Import-from-derivation in the builder store',
    machine: uri,
    message: [
      `Evaluation needs ${derivationName(path)}, which was built in the store of builder ${label} ` +
        "(import-from-derivation), but the runner's store refuses it without a signature by a key it trusts: with " +
        "the remote-store strategy the runner evaluates, and Nix copies such outputs back into the runner's store.",
      `Fix: set 'strategy: hook' for this build, or have the builder sign what it builds (secret-key-files on the ` +
        "builder, its public key in the runner's trusted-public-keys)."
    ].join('\n')
  }
}

export function builderStoreFull(uri: string, context: DiagnosisContext): Finding {
  const label = labelOf(uri, context)
  return {
    cause: 'builder-store-full',
    severity: 'error',
    title: `Store full on ${label}`,
    machine: uri,
    message: [
      `The store of builder ${label} is full: the build runs there (strategy remote-store), and it ran out of space.`,
      'Fix: free space on the builder (`nix-collect-garbage`, or a larger disk for /nix); the canary action ' +
        '(`nix-offload/nix-offload/canary`, `min-free-gb`) warns before it happens.'
    ].join('\n')
  }
}

export function copyBackFailed(uri: string, reason: string, context: DiagnosisContext): Finding {
  const label = labelOf(uri, context)
  return {
    cause: 'copy-back-failed',
    severity: 'error',
    title: `Copy back from ${label} failed`,
    machine: uri,
    message: [
      `The build in the store of builder ${label} succeeded, but copying its outputs back to the runner failed: ` +
        `${oneLine(reason)}.`,
      "Fix: check the runner's free space and that its nix-daemon trusts the runner user (it must take the builder's " +
        "unsigned outputs); or set 'copy-back: false' to leave the outputs on the builder."
    ].join('\n')
  }
}

export function userOf(uri: string): string | undefined {
  return /^ssh(?:-ng)?:\/\/([^@]+)@/.exec(uri)?.[1]
}

export function capitalised(text: string): string {
  return `${text[0]?.toUpperCase() ?? ''}${text.slice(1)}`
}

/** `> line` entries of Nix's `last N log lines:` block. */
function logTailOf(text: string): string[] {
  return text
    .split('\n')
    .map(line => /^\s*> ?(.*)$/.exec(line)?.[1])
    .filter((line): line is string => line !== undefined)
}

export function untrusted(setting: string, context: DiagnosisContext): Diagnosis {
  return {
    cause: 'untrusted-settings-ignored',
    severity: 'warning',
    title: `Setting '${setting}' ignored: ${context.runnerUser} is not trusted`,
    message: [
      `The nix-daemon ignored the setting '${setting}' because ${context.runnerUser} is not a trusted user.`,
      `Fix: add \`trusted-users = root ${context.runnerUser}\` to /etc/nix/nix.conf and restart the nix-daemon, or set ` +
        `'${setting}' in the daemon's own configuration.`
    ].join('\n')
  }
}

/** No builder took the derivation. If a configured builder offers what it needs, that builder was disabled instead. */
export function noBuilderFor(
  drv: string,
  need: MachineNeed,
  context: DiagnosisContext,
  nixTable: string[]
): Finding[] {
  const wanted = `${need.system ?? "the runner's system"} with features {${need.features.join(', ')}}`
  const able = context.builders.filter(b => fits(b, need))
  const lines =
    able.length > 0
      ? [
          `No builder took ${derivationName(drv)}, although ${able.map(b => b.label).join(', ')} offers what it needs ` +
            `(${wanted}).`,
          'After a failed connection Nix stops using a builder for the rest of the build (look for its error); ' +
            'otherwise the nix-daemon was not given this builder.'
        ]
      : [
          `No builder can build ${derivationName(drv)}: it needs ${wanted}.`,
          ...context.builders.map(b => `- ${b.label} offers ${describeOffer(b)}: ${whyNot(b, need)}`),
          ...(context.builders.length === 0 ? ['Nix saw these machines:', ...nixTable] : []),
          'Fix: add the system or feature to the `systems` / `supported-features` inputs (or the `builders` line) ' +
            'of a builder that really has it, or add a builder that does.'
        ]
  return [
    {
      cause: 'no-matching-builder',
      severity: 'error',
      title: `No builder for ${wanted}`,
      message: lines.join('\n'),
      drvPath: drv,
      usableBy: able.map(b => b.storeUri)
    }
  ]
}

function whyNot(b: BuilderOffer, need: MachineNeed): string {
  const where = b.origin === undefined ? '' : ` (${b.origin})`
  if (need.system !== undefined && !b.systems.includes(need.system)) return `no ${need.system}${where}`
  const missing = need.features.filter(
    f => !b.supportedFeatures.includes(f) && !b.mandatoryFeatures.includes(f)
  )
  if (missing.length > 0) return `lacks ${missing.join(', ')}${where}`
  const unmet = b.mandatoryFeatures.filter(f => !need.features.includes(f))
  return `only takes derivations requiring ${unmet.join(', ')} (mandatory features${where})`
}

function describeOffer(b: BuilderOffer): string {
  const features = [...b.supportedFeatures, ...b.mandatoryFeatures.map(f => `${f} (mandatory)`)]
  return `${b.systems.join(', ')} with features {${features.join(', ')}}`
}

export function noLocalSlot(
  kind: 'no-builders' | 'none-accepted',
  context: DiagnosisContext,
  drv?: string
): Diagnosis {
  const what = drv === undefined ? 'the derivations' : derivationName(drv)
  const user = context.runnerUser
  const lines =
    kind === 'no-builders' && context.builders.length > 0
      ? [
          `No build slot for ${what}: Nix saw no builders, and --max-jobs 0 (\`local-jobs\`) forbids building on the runner.`,
          `The builders never reached the nix-daemon: most likely ${user} is not a trusted user, and the daemon drops a ` +
            "client's `builders` setting (silently before Nix 2.22).",
          `Fix: \`trusted-users = root ${user}\` in /etc/nix/nix.conf and restart the daemon, or give the builders to the ` +
            "daemon's own configuration (its machines file)."
        ]
      : kind === 'no-builders'
        ? [
            `No build slot for ${what}: no builder is configured and --max-jobs 0 forbids building on the runner.`
          ]
        : [
            `No build slot for ${what}: no builder accepted ${drv === undefined ? 'them' : 'it'}, and --max-jobs 0 (\`local-jobs\`) forbids building on the runner.`,
            'See the other errors for the builders that were unreachable or lack the system or features it needs.'
          ]
  const diagnosis: Diagnosis = {
    cause: 'no-local-slot',
    severity: 'error',
    title: 'No builder and no local slot',
    message: lines.join('\n')
  }
  if (drv !== undefined) diagnosis.drvPath = drv
  return diagnosis
}

/** Nix's own list of machines under `(systems, maxjobs, supportedFeatures, mandatoryFeatures)`. */
export function nixMachineTable(text: string): string[] {
  const lines = text.split('\n').map(line => line.trim())
  const header = lines.indexOf('(systems, maxjobs, supportedFeatures, mandatoryFeatures)')
  return header < 0 ? [] : lines.slice(header + 1).filter(line => line.startsWith('('))
}

export function need(match: RegExpMatchArray): MachineNeed {
  return { system: group(match, 'system'), features: list(group(match, 'features')) }
}

export function list(text: string): string[] {
  return text
    .split(',')
    .map(item => item.trim())
    .filter(item => item !== '')
}

export function group(match: RegExpMatchArray, name: string): string {
  return match.groups?.[name] ?? ''
}

export function labelOf(uri: string, context: DiagnosisContext): string {
  return builderNamed(context.builders, uri)?.label ?? uri
}

export function isSshUri(uri: string): boolean {
  return /^ssh(-ng)?:\/\//.test(uri)
}

/** The derivation a local failure names: the build hook's exit after a lost connection. */
export function localFailure(text: string): string | undefined {
  return /(?:builder for|Cannot build) '(\/[^']+\.drv)'/.exec(text)?.[1]
}

/** Nix ≤ 2.33 names the derivation in `Failed to find a machine` by its base name; prefer the full path. */

export function oneLine(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .replace(/(^|: )error: /g, '$1')
    .trim()
}
