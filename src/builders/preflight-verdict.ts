import type { BuilderFacts } from './builder-facts.js'
import { compareVersions } from '../nix/index.js'
import { Input } from '../inputs/index.js'
import { fingerprint, type HostKey, knownHostsName, type PrivateKey } from '../inputs/index.js'
import type { Observation } from './preflight.js'
import { isTrustedUser } from '../runner/index.js'
import { type BuilderAccess, label, type Strategy } from '../inputs/index.js'
import {
  AUTO,
  type Builder,
  type BuilderRequest,
  builderWith,
  type Settings,
  wantsBuild
} from '../inputs/index.js'

export type PreflightCause =
  | 'unreachable'
  | 'host-key-not-pinned'
  | 'host-key-mismatch'
  | 'key-refused'
  | 'ssh-failed'
  | 'nix-missing'
  | 'store-unresponsive'
  | 'builder-user-untrusted'
  | 'auto-undetectable'
  | 'access-mismatch'

/** One builder's preflight, as reported (JSON) and judged. */
export interface PreflightResult {
  builder: string
  origin: string
  healthy: boolean
  cause?: PreflightCause
  /** First line: the builder and the cause; then the fix. */
  message?: string
  connectMs?: number
  hostKey?: { presented: string; pinned: string[]; matches: boolean }
  authenticated?: boolean
  keyType: string
  remoteProgram?: string
  /** What the key may run there; with a forced Nix program, what could not be asked (e.g. "systems"). */
  access?: BuilderAccess
  unasked?: string[]
  nixVersion?: string
  builderUserTrusted?: boolean
  /** What `auto` resolved to, when asked for. */
  detected?: { systems?: string[]; supportedFeatures?: string[]; maxJobs?: number }
  /** The builder's own Nix system, e.g. x86_64-linux. */
  system?: string
  /** Free space in the filesystem of the builder's /nix/store, in GB (10^9 bytes). */
  storeFreeGb?: number
  durationMs: number
}

/**
 * From Nix 2.16 the build hook sends an untrusted ssh-ng user the inputs and `buildPathsWithResults` instead of
 * `buildDerivation`, which the builder's daemon refuses from an untrusted user ("you are not privileged to build
 * input-addressed derivations"; build-remote.cc `trustedOrLegacy`). The choice is the runner's, and it needs the
 * builder to report trust (2.15+): both ends must be 2.16 or later (docs/nix.md, "Version notes").
 */
const TRUST_NOT_NEEDED_FROM = '2.16'

/**
 * Judges one builder's observation; on success also returns the builder with every `auto` value resolved.
 * `runnerNixVersion` is the runner's Nix, which decides with the builder's whether its user must be trusted.
 */
export function judge(
  request: BuilderRequest,
  observation: Observation,
  key: PrivateKey,
  runnerNixVersion = '',
  strategy: Strategy = 'hook'
): { result: PreflightResult; builder?: Builder } {
  const name = label(request)
  const result: PreflightResult = {
    builder: name,
    origin: request.origin,
    healthy: false,
    keyType: key.type,
    durationMs: observation.totalMs
  }
  const fail = (cause: PreflightCause, message: string): { result: PreflightResult } => {
    result.cause = cause
    result.message = message
    return { result }
  }
  const { reach } = observation
  if (!reach.ok) {
    const where = `${request.host} port ${request.port}`
    // A builder from the `builders` input has its port in its line, not in the `port` input.
    const portSource =
      request.pinInput === Input.HostPublicKey ? `'${Input.Port}'` : `the port in ${request.origin}`
    const why = {
      refused: `connection refused on ${where}: nothing listens there. Is sshd running on the builder, and is ${portSource} right?`,
      timeout: `no answer from ${where} (${reach.detail}): the builder is down, or a firewall drops the connection.`,
      dns: `the name ${request.host} does not resolve (${reach.detail}). Check '${Input.Host}'.`,
      unreachable: `cannot connect to ${where} (${reach.detail}).`
    }[reach.failure]
    return fail('unreachable', `Builder ${name} is unreachable: ${why}`)
  }
  result.connectMs = reach.connectMs

  const presented = observation.presented
  if (presented !== undefined) {
    result.hostKey = {
      presented: fingerprint(presented),
      pinned: observation.pinned.map(fingerprint),
      matches: observation.pinned.some(pin => pin.blob === presented.blob)
    }
  }
  if (presented !== undefined && observation.pinned.length === 0) {
    return fail('host-key-not-pinned', unpinnedMessage(request, name, presented))
  }
  if (presented !== undefined && result.hostKey?.matches === false) {
    return fail(
      'host-key-mismatch',
      `Builder ${name} presented a host key that is not the pinned one: it presented ${presented.type} ` +
        `${fingerprint(presented)}, '${request.pinInput}' pins ${result.hostKey.pinned.join(', ')}. If the builder ` +
        `was reinstalled or its keys rotated, check the new key on the builder (ssh-keygen -lf ` +
        `/etc/ssh/ssh_host_ed25519_key.pub) and update '${request.pinInput}'; otherwise something is in the middle.`
    )
  }
  if (observation.authenticated === false) {
    result.authenticated = false
    return fail(
      'key-refused',
      `Builder ${name} refused the client key (${key.type}) for user ${request.user}: the key in ` +
        `'${Input.SshPrivateKey}' is not authorised there. Add its public half to ~${request.user}/.ssh/authorized_keys ` +
        `on the builder: ${key.publicLine}`
    )
  }
  if (observation.error !== undefined || observation.facts === undefined) {
    const error = observation.error ?? 'no answer'
    // OpenSSH 9.8+ drops an address it penalises (PerSourcePenalties) right after the TCP connect, before any SSH
    // banner: after many failed or unauthenticated connections from it, e.g. a canary run every few minutes.
    const penalty = /before handshake|Connection lost|ECONNRESET/i.test(error)
      ? ' The builder closed the connection before the SSH handshake: its sshd may be penalising this address ' +
        '(OpenSSH 9.8+ PerSourcePenalties, after failed or unauthenticated connections from it), or MaxStartups is ' +
        'reached. Check its sshd log; exempt the runner with PerSourcePenaltyExemptList, or wait for the penalty to end.'
      : ''
    return fail('ssh-failed', `Builder ${name}: the SSH session failed: ${error}.${penalty}`)
  }
  result.authenticated = true

  const facts = observation.facts
  result.remoteProgram = facts.program
  result.access = facts.access
  if (facts.unasked.length > 0) result.unasked = facts.unasked
  const mismatch = accessMismatch(request, name, facts.access, strategy)
  if (mismatch !== undefined) return fail('access-mismatch', mismatch)
  if (!facts.programFound) {
    return fail('nix-missing', nixMissingMessage(request, name, facts))
  }
  if (facts.storeAnswers === false) {
    const asked =
      facts.access === 'nix-daemon'
        ? `its nix-daemon --stdio (the only command the key runs) shook hands, but a query of its store got`
        : `\`nix store ping\` as ${request.user} there:`
    return fail(
      'store-unresponsive',
      `Builder ${name}: its Nix store does not answer: ${asked} ` +
        `${facts.storeError ?? 'no answer'}. The SSH login works, but every build there needs its nix-daemon: is it ` +
        'running and responsive? Fix: restart it on the builder (systemctl restart nix-daemon).'
    )
  }
  result.nixVersion = facts.nixVersion
  if (facts.system !== undefined) result.system = facts.system
  if (facts.storeFreeBytes !== undefined) result.storeFreeGb = Math.round(facts.storeFreeBytes / 1e7) / 100
  if (facts.trustedUsers !== undefined) {
    result.builderUserTrusted = isTrustedUser(facts.user || request.user, facts.groups, facts.trustedUsers)
  }
  if (facts.trusted !== undefined) result.builderUserTrusted = facts.trusted
  const tooOld = (version: string): boolean =>
    version === '' || compareVersions(version, TRUST_NOT_NEEDED_FROM) < 0
  const runnerNeedsTrust = runnerNixVersion !== '' && tooOld(runnerNixVersion)
  // Building in the builder's own store needs no trust there: the runner sends only derivations and sources
  // (content-addressed) and asks its daemon to build them (docs/nix.md, "Building in the builder's store").
  if (
    strategy !== 'remote-store' &&
    request.protocol === 'ssh-ng' &&
    (tooOld(facts.nixVersion) || runnerNeedsTrust) &&
    result.builderUserTrusted === false
  ) {
    const older = runnerNeedsTrust
      ? `the runner's Nix ${runnerNixVersion} is older than ${TRUST_NOT_NEEDED_FROM}`
      : `its Nix is older than ${TRUST_NOT_NEEDED_FROM}`
    return fail(
      'builder-user-untrusted',
      `Builder ${name}: its Nix ${facts.nixVersion || '(version unknown)'} does not trust user ${request.user}, and ` +
        `as ${older}, ssh-ng builds there only for a trusted user ("you are not privileged to build ` +
        `input-addressed derivations"; both ends need Nix ${TRUST_NOT_NEEDED_FROM}+ to build as an untrusted user). ` +
        `Fix: on the builder add "trusted-users = ${request.user}" to /etc/nix/nix.conf (NixOS: ` +
        `nix.settings.trusted-users) and restart its nix-daemon, or set '${Input.Strategy}: remote-store', which ` +
        `builds in the builder's own store and needs no trust there.`
    )
  }

  const resolved = resolve(request, facts)
  if (typeof resolved === 'string') return fail('auto-undetectable', `Builder ${name}: ${resolved}`)
  if (request.systems === AUTO || request.supportedFeatures === AUTO || request.maxJobs === AUTO) {
    result.detected = {}
    if (request.systems === AUTO) result.detected.systems = resolved.systems
    if (request.supportedFeatures === AUTO) result.detected.supportedFeatures = resolved.supportedFeatures
    if (request.maxJobs === AUTO) result.detected.maxJobs = resolved.maxJobs
  }
  result.healthy = true
  return { result, builder: resolved }
}

/** A warning about a builder that passed the preflight, for the build to come. */
export interface PreflightWarning {
  builder: string
  /** Short, for the annotation title. */
  title: string
  /** First line: the builder and the risk; then the fix. */
  message: string
}

/** Warnings about healthy builders that depend on what the action builds: one per builder concerned. */
export function preflightWarnings(
  requests: readonly BuilderRequest[],
  results: readonly PreflightResult[],
  settings: Settings
): PreflightWarning[] {
  // `local-jobs` only sets the action's own build: a step that only configures the runner builds nothing itself.
  const localJobs = wantsBuild(settings) ? settings.localJobs : 0
  return requests.flatMap((request, index) => {
    const result = results[index]
    const message = result === undefined ? undefined : untrustedUploadWarning(request, result, localJobs)
    return result === undefined || message === undefined
      ? []
      : [{ builder: result.builder, title: 'user not trusted', message }]
  })
}

/**
 * A builder whose Nix does not trust its SSH user takes only signed paths from the runner (Nix 2.16+: the inputs are
 * copied to its store, which checks signatures; seen on 2.26 and 2.34 as "cannot add path '…' because it lacks a
 * signature by a trusted key"). With `local-jobs` > 0 Nix may build an input on the runner, unsigned, and then send
 * it: say so before the build fails that way.
 */
function untrustedUploadWarning(
  request: BuilderRequest,
  result: PreflightResult,
  localJobs: number
): string | undefined {
  if (!result.healthy || result.builderUserTrusted !== false || localJobs === 0) return undefined
  return (
    `Builder ${result.builder}: its Nix does not trust user ${request.user}, so it refuses paths built on the runner ` +
    `unless they are signed by a key it trusts, and with '${Input.LocalJobs}: ${localJobs}' Nix may build inputs on ` +
    `the runner and send them ("lacks a signature by a trusted key"). Fix: on the builder add "trusted-users = ` +
    `${request.user}" to /etc/nix/nix.conf (NixOS: nix.settings.trusted-users) and restart its nix-daemon, or set ` +
    `'${Input.LocalJobs}: 0' so the builders build every derivation.`
  )
}

/** Replaces `auto` with what the builder's Nix reports: system + extra-platforms, system-features, cores. */
export function resolve(request: BuilderRequest, facts: BuilderFacts): Builder | string {
  if (facts.access !== 'shell') {
    const unknown = autoWithoutShell(request, facts.access)
    if (unknown !== undefined) return unknown
  }
  const systems =
    request.systems === AUTO ? [facts.system ?? '', ...facts.extraPlatforms].filter(Boolean) : request.systems
  if (systems.length === 0) {
    return `'systems: auto' needs the builder's Nix to print its config ("nix show-config --json"), which it did not.`
  }
  const maxJobs = request.maxJobs === AUTO ? facts.cores : request.maxJobs
  if (maxJobs === undefined)
    return `'max-jobs: auto' needs the builder's core count (getconf, nproc or sysctl).`
  const supportedFeatures =
    request.supportedFeatures === AUTO ? facts.systemFeatures : request.supportedFeatures
  const builder = builderWith(request, systems, maxJobs, supportedFeatures)
  if (facts.access !== 'shell') builder.access = facts.access
  return builder
}

/**
 * The input (or the column of the builders line) to set instead of `auto`: a builder whose key runs only one of Nix's
 * programs answers no shell command, and neither protocol tells the systems, features or cores.
 */
function autoWithoutShell(request: BuilderRequest, access: BuilderAccess): string | undefined {
  const fromLine = request.pinInput === Input.KnownHosts
  const wanted = [
    { auto: request.systems === AUTO, input: Input.Systems, column: 2, example: 'x86_64-linux' },
    { auto: request.maxJobs === AUTO, input: Input.MaxJobs, column: 4, example: '4' },
    {
      auto: request.supportedFeatures === AUTO,
      input: Input.SupportedFeatures,
      column: 6,
      example: 'big-parallel'
    }
  ].filter(entry => entry.auto)
  if (wanted.length === 0) return undefined
  const where = wanted
    .map(entry =>
      fromLine
        ? `column ${entry.column} (${entry.input}) of its line in ${request.origin}`
        : `'${entry.input}'`
    )
    .join(', ')
  const program = access === 'nix-daemon' ? 'nix-daemon --stdio' : 'nix-store --serve'
  return (
    `its key runs only ${program} (a forced command), which cannot tell its ${wanted.map(e => e.input).join(', ')}, ` +
    `so 'auto' has nothing to go on. Fix: set ${where} to the builder's values (e.g. ${wanted.map(e => `${e.input}: ${e.example}`).join(', ')}).`
  )
}

/**
 * A key that runs only one of Nix's programs decides the protocol: ssh-ng talks to nix-daemon, ssh to nix-store
 * --serve, and the build in the builder's own store needs ssh-ng.
 */
function accessMismatch(
  request: BuilderRequest,
  name: string,
  access: BuilderAccess,
  strategy: Strategy
): string | undefined {
  const fromLine = request.pinInput === Input.KnownHosts
  const protocolInput = (protocol: string): string =>
    fromLine ? `a ${protocol}:// URI in its line in ${request.origin}` : `'${Input.Protocol}: ${protocol}'`
  if (access === 'nix-store --serve' && request.protocol === 'ssh-ng') {
    return (
      `Builder ${name}: the key for ${request.user} runs only \`nix-store --serve\` there (a forced command, e.g. ` +
      `NixOS nix.sshServe with protocol "ssh"), which speaks Nix's ssh protocol, not ssh-ng. Fix: set ` +
      `${protocolInput('ssh')} with '${Input.Strategy}: hook' (or auto), or have the builder run \`nix-daemon --stdio\` ` +
      `for this key (NixOS: nix.sshServe.protocol = "ssh-ng").`
    )
  }
  if (access === 'nix-daemon' && request.protocol === 'ssh') {
    return (
      `Builder ${name}: the key for ${request.user} runs only \`nix-daemon --stdio\` there (a forced command), ` +
      `which speaks ssh-ng, not Nix's ssh protocol. Fix: set ${protocolInput('ssh-ng')}.`
    )
  }
  if (access === 'nix-store --serve' && strategy === 'remote-store') {
    return (
      `Builder ${name}: '${Input.Strategy}: remote-store' builds in the builder's own store over ssh-ng, and the key ` +
      `for ${request.user} runs only \`nix-store --serve\` there. Fix: set '${Input.Strategy}: hook' (or auto).`
    )
  }
  return undefined
}

function unpinnedMessage(request: BuilderRequest, name: string, presented: HostKey): string {
  const line =
    request.pinInput === Input.HostPublicKey
      ? `${presented.type} ${presented.blob}`
      : `${knownHostsName(request.host, request.port)} ${presented.type} ${presented.blob}`
  return (
    `Input '${request.pinInput}': builder ${name} has no pinned host key, and strict host-key checking is always ` +
    `on. It presents ${presented.type} ${fingerprint(presented)}. Check that fingerprint on the builder ` +
    `(ssh-keygen -lf /etc/ssh/ssh_host_${presented.type.replace(/^ssh-/, '').replace(/-sha2-.*/, '')}_key.pub), ` +
    `then add this line to '${request.pinInput}':\n${line}`
  )
}

function nixMissingMessage(request: BuilderRequest, name: string, facts: BuilderFacts): string {
  const store =
    request.protocol === 'ssh-ng' ? `${facts.program} --stdio` : `${facts.program} --serve --write`
  if (request.remoteProgram !== undefined) {
    const programName = facts.program.slice(facts.program.lastIndexOf('/') + 1)
    return (
      `Input '${Input.RemoteProgram}': builder ${name} has no executable ${facts.program}, and Nix runs \`${store}\` ` +
      `there over SSH. Fix: set '${Input.RemoteProgram}' to the directory where \`command -v ${programName}\` finds ` +
      `it in a login shell of ${request.user} on the builder (multi-user installs: /nix/var/nix/profiles/default/bin).`
    )
  }
  return (
    `Builder ${name}: ${facts.program} is not on the non-interactive PATH of ${request.user}, and Nix runs ` +
    `\`${store}\` there over SSH. Fix from the workflow: set \`${Input.RemoteProgram}: ` +
    `/nix/var/nix/profiles/default/bin\` (where \`command -v ${facts.program}\` finds it in a login shell on the ` +
    `builder). Or fix on the builder: install Nix for that user, or make it reachable without a login ` +
    `shell (multi-user installs put it in /nix/var/nix/profiles/default/bin, which only interactive shells add: ` +
    `e.g. add that directory to PATH in ~${request.user}/.bashrc above its interactive check, or set ` +
    `"SetEnv PATH=…" for that user in sshd_config).`
  )
}
