import type { BuilderFacts } from './builder-facts.js'
import { compareVersions } from '../nix/index.js'
import { Input } from '../inputs/index.js'
import { fingerprint, type PrivateKey } from '../inputs/index.js'
import type { Observation } from './preflight.js'
import {
  accessMismatch,
  hostKeyMismatchMessage,
  keyRefusedMessage,
  nixMissingMessage,
  sshFailedMessage,
  storeUnresponsiveMessage,
  unpinnedMessage,
  unreachableMessage
} from './preflight-messages.js'
import { isTrustedUser } from '../runner/index.js'
import { type BuilderAccess, label, type Strategy } from '../inputs/index.js'
import {
  AUTO,
  type Builder,
  type BuilderLoad,
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
  /** How busy it was, where its shell could tell. */
  load?: BuilderLoad
  /** Why a healthy builder was left out of this run (`min-free-gib`), for the summary. */
  passedOver?: string
  durationMs: number
}

/**
 * From Nix 2.16 the build hook sends an untrusted ssh-ng user the inputs and `buildPathsWithResults` instead of
 * `buildDerivation`, which the builder's daemon refuses from an untrusted user ("you are not privileged to build
 * input-addressed derivations"; build-remote.cc `trustedOrLegacy`). The choice is the runner's, and it needs the
 * builder to report trust (2.15+): both ends must be 2.16 or later (docs/nix.md, "Version notes").
 */
const TRUST_NOT_NEEDED_FROM = '2.16'

/** Why a builder fails the preflight, as the result records it. */
interface Failure {
  cause: PreflightCause
  message: string
}

/** One builder being judged: the request, its label and the result filled in phase by phase. */
interface Judging {
  request: BuilderRequest
  name: string
  result: PreflightResult
}

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
  const judging: Judging = { request, name, result }
  const session = judgeSession(judging, observation, key)
  if ('failure' in session) return failed(result, session.failure)
  const { facts } = session
  const refusal = judgeProgram(judging, facts, strategy)
  if (refusal !== undefined) return failed(result, refusal)
  recordNix(judging, facts)
  const distrust = judgeTrust(judging, facts, runnerNixVersion, strategy)
  if (distrust !== undefined) return failed(result, distrust)

  const resolved = resolve(request, facts)
  if (typeof resolved === 'string') {
    return failed(result, { cause: 'auto-undetectable', message: `Builder ${name}: ${resolved}` })
  }
  recordDetected(judging, resolved)
  if (resolved.load !== undefined) result.load = resolved.load
  result.healthy = true
  return { result, builder: resolved }
}

function failed(result: PreflightResult, failure: Failure): { result: PreflightResult } {
  result.cause = failure.cause
  result.message = failure.message
  return { result }
}

/** The TCP connection, the host key and the login: the facts the session gathered, or why it failed. */
function judgeSession(
  { request, name, result }: Judging,
  observation: Observation,
  key: PrivateKey
): { facts: BuilderFacts } | { failure: Failure } {
  const { reach } = observation
  if (!reach.ok)
    return { failure: { cause: 'unreachable', message: unreachableMessage(request, name, reach) } }
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
    return { failure: { cause: 'host-key-not-pinned', message: unpinnedMessage(request, name, presented) } }
  }
  if (presented !== undefined && result.hostKey?.matches === false) {
    const message = hostKeyMismatchMessage(request, name, presented, result.hostKey.pinned)
    return { failure: { cause: 'host-key-mismatch', message } }
  }
  if (observation.authenticated === false) {
    result.authenticated = false
    return { failure: { cause: 'key-refused', message: keyRefusedMessage(request, name, key) } }
  }
  if (observation.error !== undefined || observation.facts === undefined) {
    const message = sshFailedMessage(name, observation.error ?? 'no answer')
    return { failure: { cause: 'ssh-failed', message } }
  }
  result.authenticated = true
  return { facts: observation.facts }
}

/** What the key may run there, whether that suits the protocol and strategy, and whether its Nix and store answer. */
function judgeProgram(
  { request, name, result }: Judging,
  facts: BuilderFacts,
  strategy: Strategy
): Failure | undefined {
  result.remoteProgram = facts.program
  result.access = facts.access
  if (facts.unasked.length > 0) result.unasked = facts.unasked
  const mismatch = accessMismatch(request, name, facts.access, strategy)
  if (mismatch !== undefined) return { cause: 'access-mismatch', message: mismatch }
  if (!facts.programFound) {
    return { cause: 'nix-missing', message: nixMissingMessage(request, name, facts) }
  }
  if (facts.storeAnswers === false) {
    return { cause: 'store-unresponsive', message: storeUnresponsiveMessage(request, name, facts) }
  }
  return undefined
}

function recordNix({ request, result }: Judging, facts: BuilderFacts): void {
  result.nixVersion = facts.nixVersion
  if (facts.system !== undefined) result.system = facts.system
  if (facts.storeFreeBytes !== undefined) result.storeFreeGb = Math.round(facts.storeFreeBytes / 1e7) / 100
  if (facts.trustedUsers !== undefined) {
    result.builderUserTrusted = isTrustedUser(facts.user || request.user, facts.groups, facts.trustedUsers)
  }
  if (facts.trusted !== undefined) result.builderUserTrusted = facts.trusted
}

/** Whether ssh-ng builds there need the builder's user to be trusted, and it is not (see TRUST_NOT_NEEDED_FROM). */
function judgeTrust(
  { request, name, result }: Judging,
  facts: BuilderFacts,
  runnerNixVersion: string,
  strategy: Strategy
): Failure | undefined {
  const tooOld = (version: string): boolean =>
    version === '' || compareVersions(version, TRUST_NOT_NEEDED_FROM) < 0
  const runnerNeedsTrust = runnerNixVersion !== '' && tooOld(runnerNixVersion)
  // Building in the builder's own store needs no trust there: the runner sends only derivations and sources
  // (content-addressed) and asks its daemon to build them (docs/nix.md, "Building in the builder's store").
  const needsTrust =
    strategy !== 'remote-store' &&
    request.protocol === 'ssh-ng' &&
    (tooOld(facts.nixVersion) || runnerNeedsTrust)
  if (!needsTrust || result.builderUserTrusted !== false) return undefined
  const older = runnerNeedsTrust
    ? `the runner's Nix ${runnerNixVersion} is older than ${TRUST_NOT_NEEDED_FROM}`
    : `its Nix is older than ${TRUST_NOT_NEEDED_FROM}`
  return {
    cause: 'builder-user-untrusted',
    message:
      `Builder ${name}: its Nix ${facts.nixVersion || '(version unknown)'} does not trust user ${request.user}, and ` +
      `as ${older}, ssh-ng builds there only for a trusted user ("you are not privileged to build ` +
      `input-addressed derivations"; both ends need Nix ${TRUST_NOT_NEEDED_FROM}+ to build as an untrusted user). ` +
      `Fix: on the builder add "trusted-users = ${request.user}" to /etc/nix/nix.conf (NixOS: ` +
      `nix.settings.trusted-users) and restart its nix-daemon, or set '${Input.Strategy}: remote-store', which ` +
      `builds in the builder's own store and needs no trust there.`
  }
}

/** What each `auto` value resolved to, for the report. */
function recordDetected({ request, result }: Judging, resolved: Builder): void {
  if (request.systems === AUTO || request.supportedFeatures === AUTO || request.maxJobs === AUTO) {
    result.detected = {}
    if (request.systems === AUTO) result.detected.systems = resolved.systems
    if (request.supportedFeatures === AUTO) result.detected.supportedFeatures = resolved.supportedFeatures
    if (request.maxJobs === AUTO) result.detected.maxJobs = resolved.maxJobs
  }
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
  const load = loadOf(facts)
  if (load !== undefined) builder.load = load
  return builder
}

/** The load figures a shell told; undefined when it told none. */
function loadOf(facts: BuilderFacts): BuilderLoad | undefined {
  const load: BuilderLoad = {}
  if (facts.cores !== undefined) load.cores = facts.cores
  if (facts.loadAverage !== undefined) load.loadAverage = facts.loadAverage
  if (facts.runningBuilds !== undefined) load.runningBuilds = facts.runningBuilds
  if (facts.storeFreeBytes !== undefined) load.storeFreeBytes = facts.storeFreeBytes
  return Object.keys(load).length === 0 ? undefined : load
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
