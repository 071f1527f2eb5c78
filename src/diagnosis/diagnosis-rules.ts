import type { Finding, Rule } from './diagnosis-types.js'
import {
  buildFailed,
  builderStoreFull,
  byHost,
  capitalised,
  copyBackFailed,
  dropped,
  group,
  isSshUri,
  labelOf,
  list,
  localFailure,
  need,
  nixMachineTable,
  noBuilderFor,
  noLocalSlot,
  unreachable,
  unsignedFromBuilderStore,
  unsignedInputRefused,
  untrusted,
  userOf
} from './diagnosis-messages.js'

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
  // libstore/ssh.cc SSHMaster::startCommand: `failed to start SSH connection to '%s'` (2.16+, docs/nix.md, "Failure
  // wordings"; Lix too), when not already wrapped in `cannot build on`.
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
  // libstore/daemon.cc: warning since Nix 2.22 (before: dropped silently, docs/nix.md, "Failure wordings"); Lix
  // capitalises `Ignoring`.
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
  // nix/store-build.ts, after the remote-store build: `nix copy --from <builder> --no-check-sigs` failed. First: its
  // reason may be a signature refused or a disk full in the runner's store, which the rules below read as other causes.
  {
    cause: 'copy-back-failed',
    versions: 'all (remote-store strategy)',
    pattern: /copying the outputs back from '(?<uri>[^']+)' failed: (?<reason>.*)/,
    explain: (m, c) => [copyBackFailed(group(m, 'uri'), group(m, 'reason'), c)]
  },
  // libstore/local-store.cc LocalStore::addToStore, on the builder, relayed over ssh-ng: from Nix 2.16 an untrusted
  // builder user gets the inputs copied to its store (build-remote.cc `trustedOrLegacy`), where the builder's daemon
  // checks signatures, so an unsigned path built on the runner is refused. Then `Cannot build '…'` / `Reason: builder
  // failed with exit code 1` (2.34.8) or `builder for '…' failed with exit code 1` (2.26.3) names the derivation.
  // The same wording, in the runner's store this time: with the remote-store strategy, a path built in the builder's
  // store that evaluation needs back (import-from-derivation) is copied into the runner's eval store, which wants a
  // signature (seen on 2.34; 2.8 reads it where it was built).
  {
    cause: 'unsigned-from-builder-store',
    versions: 'Nix 2.34 (remote-store strategy)',
    pattern: /cannot add path '(?<path>[^']+)' because it lacks a signature by a trusted key/,
    explain: (m, c) => {
      const path = group(m, 'path')
      if (c.buildStore === undefined || c.copiedTo?.(path) !== undefined) return []
      return [unsignedFromBuilderStore(path, c.buildStore, c)]
    }
  },
  // ENOSPC, in any wording that carries the system's own text (`writing to file: No space left on device`, a build's
  // own `No space left on device`): with the remote-store strategy everything but the copy back is written in the
  // builder's store, whose daemon relays its error.
  {
    cause: 'builder-store-full',
    versions: 'all (remote-store strategy)',
    pattern: /No space left on device/,
    explain: (_m, c) => (c.buildStore === undefined ? [] : [builderStoreFull(c.buildStore, c)])
  },
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
