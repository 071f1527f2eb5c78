import { derivationName } from './nix-log.js'
import type { BuilderOffer, Diagnosis, DiagnosisContext, Finding, Rule } from './diagnosis.js'

/**
 * The wordings of Nix's remote-build failures, one row per wording with the Nix/Lix versions that print it (from their
 * sources), and the messages that explain them. Supporting a new wording is adding a row here; diagnosis.ts applies
 * the rows and reconciles what they find.
 */

const DROPPED =
  /unexpected end-of-file|disconnected unexpectedly|Broken pipe|Connection reset|Connection closed/i
/** Store URIs of the runner's own daemon or store: losing those is not offloading's fault. */
const LOCAL_STORE = /remote store '(?:daemon|auto|local|unix:[^']*)'/

export const RULES: readonly Rule[] = [
  // src/build-remote/build-remote.cc (Nix 2.8+, Lix); libstore/build/derivation-building-goal.cc once newest Nix moved
  // the hook in-process: `build of '%s' on '%s' failed: %s`. A lost connection is not the derivation's fault.
  {
    cause: 'connection-dropped',
    versions: 'Nix 2.8+, Lix 2.90+',
    pattern: /build of '(?<drv>[^']+)' on '(?<uri>[^']+)' failed: (?<reason>[\s\S]*)/,
    explain: (m, c) => {
      const reason = group(m, 'reason')
      return DROPPED.test(reason) ? [dropped(reason, group(m, 'drv'), group(m, 'uri'), c)] : []
    }
  },
  // Same source; the reason is the builder's own error: `builder for '%s' failed with exit code %d` (Nix ≤ 2.29, Lix),
  // `Cannot build '%s'.` + `Reason: builder failed with exit code %d.` (newer Nix).
  {
    cause: 'build-failed-on-builder',
    versions: 'Nix 2.8+, Lix 2.90+',
    pattern: /build of '(?<drv>[^']+)' on '(?<uri>[^']+)' failed: (?<reason>[\s\S]*)/,
    explain: (m, c) => [buildFailed(group(m, 'drv'), group(m, 'uri'), group(m, 'reason'), c)]
  },
  // build-remote.cc / derivation-building-goal.cc, Lix build-remote.cc: `cannot build on '%s': %s%s`, printed when
  // connecting fails; the builder is then skipped for the rest of the session (seen on 2.8).
  {
    cause: 'builder-unreachable',
    versions: 'Nix 2.8+, Lix 2.90+',
    pattern: /cannot build on '(?<uri>[^']+)': (?<reason>[\s\S]*)/,
    explain: (m, c) => [unreachable(group(m, 'uri'), group(m, 'reason'), c)]
  },
  // libstore/ssh.cc SSHMaster::startCommand: `failed to start SSH connection to '%s'` (NIX-FACTS: 2.16+; Lix too), when
  // not already wrapped in `cannot build on`.
  {
    cause: 'builder-unreachable',
    versions: 'Nix 2.16+, Lix 2.90+',
    pattern: /failed to start SSH connection to '(?<host>[^']+)'(?<reason>[\s\S]*)/,
    explain: (m, c) => byHost(group(m, 'host'), m[0], c)
  },
  // libstore/legacy-ssh-store.cc openConnection (ssh://): `cannot connect to '%1%'`.
  {
    cause: 'builder-unreachable',
    versions: 'Nix 2.8+',
    pattern: /cannot connect to '(?<host>[^']+)'/,
    explain: (m, c) => byHost(group(m, 'host'), m.input ?? m[0], c)
  },
  // Lix libstore/ssh.cc: warns `SSH to '%s' failed, stdout first line: '%s'` before failing.
  {
    cause: 'builder-unreachable',
    versions: 'Lix 2.91+',
    pattern: /SSH to '(?<host>[^']+)' failed, stdout first line: '(?<reason>[^']*)'/,
    explain: (m, c) => byHost(group(m, 'host'), m[0], c)
  },
  // libstore/remote-store.cc initConnection (ssh-ng): `cannot open connection to remote store '%s': %s`; seen on 2.8
  // as `…: error: unexpected end-of-file` for a host-key mismatch, 2.20+ `Nix daemon disconnected unexpectedly`.
  {
    cause: 'builder-unreachable',
    versions: 'Nix 2.8+, Lix 2.90+',
    pattern: /cannot open connection to remote store '(?<uri>[^']+)'(?::\s*(?<reason>[\s\S]*))?/,
    explain: (m, c) =>
      isSshUri(group(m, 'uri')) ? [unreachable(group(m, 'uri'), group(m, 'reason'), c)] : []
  },
  // libstore/daemon.cc: warning since Nix 2.22 (before: dropped silently, NIX-FACTS.md); Lix capitalises `Ignoring`.
  {
    cause: 'untrusted-settings-ignored',
    versions: 'Nix 2.22+, Lix 2.90+',
    pattern:
      /ignoring the client-specified setting '(?<setting>[^']+)', because it is a restricted setting and you are not a trusted user/i,
    explain: (m, c) => [untrusted(group(m, 'setting'), c)]
  },
  // build-remote.cc (derivation-building-goal.cc once in-process), Lix build-remote.cc. Nix 2.8–2.11 print lists bare:
  // `required (system, features): (x86_64-linux, kvm)`; 2.12+ and Lix bracket them: `(x86_64-linux, [kvm])`. The
  // derivation is a base name until the hook moved in-process.
  {
    cause: 'no-matching-builder',
    versions: 'Nix 2.8+, Lix 2.90+',
    pattern:
      /Failed to find a machine for remote build!\s*\n\s*derivation: (?<drv>\S+)\s*\n\s*required \(system, features\): \((?<system>[^,)]+),\s*\[?(?<features>[^\])]*)\]?\)/,
    explain: (m, c) => noBuilderFor(group(m, 'drv'), need(m), c, nixMachineTable(m.input ?? ''))
  },
  // libstore/build/derivation-building-goal.cc, Nix 2.30–2.33: `Cannot build '%s'.` / `Reason: required system or
  // feature not available` / `Required system: '%s' with features {%s}`.
  {
    cause: 'no-matching-builder',
    versions: 'Nix 2.30–2.33',
    pattern:
      /Cannot build '(?<drv>[^']+)'\.\s*\n\s*Reason: required system or feature not available\s*\n\s*Required system: '(?<system>[^']*)' with features \{(?<features>[^}]*)\}/,
    explain: (m, c) => noBuilderFor(group(m, 'drv'), need(m), c, [])
  },
  // libstore/build/derivation-building-goal.cc reject(), new in Nix 2.34.0 ("libstore: structured diagnostics for
  // local build rejection"): `Reason: platform mismatch` + `Required system: '%s'` + `Current system: '%s'` and/or
  // `Reason: missing system features` + `Required features: {%s}` + `Available features: {%s}`, after the max-jobs
  // reason when that applies too. Seen on 2.34.8 (fixtures *-nix-2.34.log).
  {
    cause: 'no-matching-builder',
    versions: 'Nix 2.34+',
    pattern: /Cannot build '(?<drv>[^']+)'\.[\s\S]*?Reason: (?:platform mismatch|missing system features)/,
    explain: (m, c) => {
      const text = m.input ?? ''
      const system = /Required system: '([^']*)'/.exec(text)?.[1]
      const features = /Required features: \{([^}]*)\}/.exec(text)?.[1] ?? ''
      const found = noBuilderFor(group(m, 'drv'), { system, features: list(features) }, c, [])
      // The max-jobs reason in the same message: the runner was not allowed either (merged into the finding above).
      const noSlot = /Reason: local builds are disabled/.test(text)
      return noSlot ? [...found, noLocalSlot('none-accepted', c, group(m, 'drv'))] : found
    }
  },
  // libstore/build/local-derivation-goal.cc startBuilder in Nix 2.8 (the check moved with later refactors), until 2.29;
  // Lix too, which may append a `Hint:`. The runner cannot build it either.
  {
    cause: 'no-matching-builder',
    versions: 'Nix 2.8–2.29, Lix 2.90+',
    pattern:
      /a '(?<system>[^']+)' with features \{(?<features>[^}]*)\} is required to build '(?<drv>[^']+)', but I am a '[^']*' with features \{[^}]*\}/,
    explain: (m, c) => noBuilderFor(group(m, 'drv'), need(m), c, [])
  },
  // derivation-building-goal.cc reject(), Nix 2.34.0+: `Reason: local builds are disabled (max-jobs = 0)` + `Hint: set
  // 'max-jobs' to a non-zero value to enable local builds, or configure remote builders via 'builders'`, alone (the
  // runner could build it but may not). Seen on 2.34.8 where earlier Nix printed worker.cc's `Unable to start any
  // build`, and alike whether Nix had no builder or none took the derivation: the build hook declines silently when it
  // has no machines (build-remote.cc `machines.empty()`) and says `Failed to find a machine` or `cannot build on`
  // first when it has some.
  {
    cause: 'no-local-slot',
    versions: 'Nix 2.34+',
    pattern:
      /Cannot build '(?<drv>[^']+)'\.\s*\n\s*Reason: local builds are disabled \(max-jobs = 0\)(?:\s*\n\s*Hint: [^\n]*)?/,
    explain: (m, c, _later, earlier) => {
      const sawBuilders = earlier.some(text =>
        /Failed to find a machine for remote build!|cannot build on '/.test(text)
      )
      return [noLocalSlot(sawBuilders ? 'none-accepted' : 'no-builders', c, group(m, 'drv'))]
    }
  },
  // libstore/build/worker.cc, when no builder is configured at all: `unable to start any build; either increase
  // '--max-jobs' or enable remote builds.` (Nix 2.8–2.20; `Unable` from 2.21; 2.21–2.29 write it as an indented raw
  // string, so a line break follows `build;`: seen on 2.26.3); Lix: `either set '--max-jobs' to a non-zero value or
  // enable remote builds.`
  {
    cause: 'no-local-slot',
    versions: 'Nix 2.8+, Lix 2.90+',
    pattern:
      /unable to start any build;\s+either (?:increase '--max-jobs'|set '--max-jobs' to a non-zero value) or enable remote builds/i,
    explain: (_m, c) => [noLocalSlot('no-builders', c)]
  },
  // worker.cc, builders configured but none took the derivation: `…remote machines may not have all required system
  // features.` (`Unable` from 2.21, on two lines in 2.21–2.29 as above; Lix lower case).
  {
    cause: 'no-local-slot',
    versions: 'Nix 2.8+, Lix 2.90+',
    pattern: /unable to start any build;\s+remote machines may not have all required system features/i,
    explain: (_m, c) => [noLocalSlot('none-accepted', c)]
  },
  // A connection lost outside `build of … failed`: the hook dies with `unexpected end-of-file` (≤ 2.19) or `Nix daemon
  // disconnected unexpectedly (maybe it crashed?)` (2.20+, Lix) and the goal then reports its own failure.
  {
    cause: 'connection-dropped',
    versions: 'Nix 2.8+, Lix 2.90+',
    pattern: DROPPED,
    explain: (m, c, later) => {
      if (LOCAL_STORE.test(m.input ?? '')) return []
      const named = later.map(text => localFailure(text)).find(path => path !== undefined)
      // A hung connection cut by ServerAlive names no derivation at all (seen on 2.8): the last remote build it is.
      const guess = named === undefined ? c.lastRemoteBuild?.() : undefined
      const drv = named ?? guess?.drvPath
      const machine = drv === undefined ? undefined : c.machineOf?.(drv)
      if (machine === '') return []
      return [dropped(m.input ?? m[0], drv, machine, c)]
    }
  },
  // libstore/daemon.cc on the builder, relayed over ssh-ng: the builder user is not in its trusted-users, and the
  // runner's hook used `buildDerivation` because the runner or the builder is older than 2.16 (build-remote.cc
  // `trustedOrLegacy`; seen with runner 2.8 → builder 2.34). The preflight catches it first; this is for builders whose
  // config changed between preflight and build.
  {
    cause: 'builder-user-untrusted',
    versions: 'runner or builder Nix 2.8–2.15',
    pattern: /you are not privileged to build input-addressed derivations/,
    explain: (_m, c) => {
      const last = c.lastRemoteBuild?.()
      const label = last === undefined ? 'a builder' : `builder ${labelOf(last.machine, c)}`
      const user = last === undefined ? undefined : userOf(last.machine)
      const finding: Finding = {
        cause: 'builder-user-untrusted',
        severity: 'error',
        title: `Not trusted on ${label}`,
        message: [
          `${capitalised(label)} refused to build: its Nix does not trust the SSH ` +
            `user${user === undefined ? '' : ` ${user}`}, and while the runner or the builder runs Nix older than ` +
            '2.16, ssh-ng needs a trusted user to build input-addressed derivations.',
          `Fix: on the builder, add "trusted-users = ${user ?? '<user>'}" to /etc/nix/nix.conf (NixOS: ` +
            'nix.settings.trusted-users) and restart its nix-daemon.'
        ].join('\n')
      }
      if (last !== undefined) {
        finding.machine = last.machine
        finding.drvPath = last.drvPath
      }
      return [finding]
    }
  },
  // libstore/local-store.cc LocalStore::addToStore, on the builder, relayed over ssh-ng: from Nix 2.16 an untrusted
  // builder user gets the inputs copied to its store (build-remote.cc `trustedOrLegacy`), where the builder's daemon
  // checks signatures, so an unsigned path built on the runner is refused. Then `Cannot build '…'` / `Reason: builder
  // failed with exit code 1` (2.34.8) or `builder for '…' failed with exit code 1` (2.26.3) names the derivation.
  {
    cause: 'builder-user-untrusted',
    versions: 'Nix 2.16+',
    pattern: /cannot add path '(?<path>[^']+)' because it lacks a signature by a trusted key/,
    explain: (m, c, later) => {
      const path = group(m, 'path')
      const drv = later.map(text => localFailure(text)).find(found => found !== undefined)
      // Nix 2.26 names a copy's destination `ssh-ng://` alone (seen): only a store URI with a host names a builder.
      const copiedTo = c.copiedTo?.(path)
      const machine =
        (copiedTo !== undefined && /^ssh(?:-ng)?:\/\/[^/]/.test(copiedTo) ? copiedTo : undefined) ??
        (drv === undefined ? undefined : c.machineOf?.(drv)) ??
        c.lastRemoteBuild?.()?.machine
      // Refused by the runner's own store, not a builder's.
      if (machine === '') return []
      return [unsignedInputRefused(path, drv, machine, c)]
    }
  }
]

/** Diagnoses for Nix's error messages, most useful first; [] when nothing is recognised. */
interface Need {
  system: string | undefined
  features: string[]
}

function unreachable(uri: string, reason: string, context: DiagnosisContext): Diagnosis {
  const label = labelOf(uri, context)
  const pinInput = context.builders.find(b => b.storeUri === uri)?.pinInput
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
      "not on the builder's non-interactive PATH. The action's preflight normally catches these first, so the builder " +
      'changed or went away after it.'
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
    [/command not found|No such file or directory/i, "Nix is not on the builder's non-interactive PATH."]
  ]
  return hints.find(([pattern]) => pattern.test(reason))?.[1]
}

function byHost(host: string, text: string, context: DiagnosisContext): Finding[] {
  const bare = (s: string): string => s.replace(/^[a-z-]+:\/\//, '').replace(/^[^@]*@/, '')
  const offer = context.builders.find(b => bare(b.storeUri) === bare(host) || b.label === host)
  return [unreachable(offer?.storeUri ?? host, text, context)]
}

function dropped(
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

function buildFailed(drv: string, uri: string, reason: string, context: DiagnosisContext): Diagnosis {
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

function unsignedInputRefused(
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

function userOf(uri: string): string | undefined {
  return /^ssh(?:-ng)?:\/\/([^@]+)@/.exec(uri)?.[1]
}

function capitalised(text: string): string {
  return `${text[0]?.toUpperCase() ?? ''}${text.slice(1)}`
}

/** `> line` entries of Nix's `last N log lines:` block. */
function logTailOf(text: string): string[] {
  return text
    .split('\n')
    .map(line => /^\s*> ?(.*)$/.exec(line)?.[1])
    .filter((line): line is string => line !== undefined)
}

function untrusted(setting: string, context: DiagnosisContext): Diagnosis {
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
function noBuilderFor(drv: string, need: Need, context: DiagnosisContext, nixTable: string[]): Finding[] {
  const wanted = `${need.system ?? "the runner's system"} with features {${need.features.join(', ')}}`
  const able = context.builders.filter(b => offers(b, need))
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

/** Machine.allSupported + mandatoryMet in libstore/machines.cc. */
function offers(b: BuilderOffer, need: Need): boolean {
  const has = (f: string): boolean => b.supportedFeatures.includes(f) || b.mandatoryFeatures.includes(f)
  return (
    (need.system === undefined || b.systems.includes(need.system)) &&
    need.features.every(has) &&
    b.mandatoryFeatures.every(f => need.features.includes(f))
  )
}

function whyNot(b: BuilderOffer, need: Need): string {
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

function noLocalSlot(
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
function nixMachineTable(text: string): string[] {
  const lines = text.split('\n').map(line => line.trim())
  const header = lines.indexOf('(systems, maxjobs, supportedFeatures, mandatoryFeatures)')
  return header < 0 ? [] : lines.slice(header + 1).filter(line => line.startsWith('('))
}

function need(match: RegExpMatchArray): Need {
  return { system: group(match, 'system'), features: list(group(match, 'features')) }
}

function list(text: string): string[] {
  return text
    .split(',')
    .map(item => item.trim())
    .filter(item => item !== '')
}

function group(match: RegExpMatchArray, name: string): string {
  return match.groups?.[name] ?? ''
}

export function labelOf(uri: string, context: DiagnosisContext): string {
  return context.builders.find(b => b.storeUri === uri)?.label ?? uri
}

function isSshUri(uri: string): boolean {
  return /^ssh(-ng)?:\/\//.test(uri)
}

/** The derivation a local failure names: the build hook's exit after a lost connection. */
function localFailure(text: string): string | undefined {
  return /(?:builder for|Cannot build) '(\/[^']+\.drv)'/.exec(text)?.[1]
}

/** Nix ≤ 2.33 names the derivation in `Failed to find a machine` by its base name; prefer the full path. */

export function oneLine(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .replace(/(^|: )error: /g, '$1')
    .trim()
}
