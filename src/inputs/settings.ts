import * as core from '@actions/core'
import { BUILD_INPUTS, CANARY_INPUTS, Input, MODE } from './constants.js'
import { InputError } from './errors.js'
import {
  type HostKey,
  type KnownHostsLine,
  type PrivateKey,
  knownHostsName,
  parseHostKey,
  parseKnownHostsLine,
  parsePrivateKey
} from './keys.js'
import {
  checkBuilderEvaluation,
  checkPushRequest,
  CONTROL,
  type Evaluate,
  FEATURE,
  parseBoolean,
  parseCount,
  parseHost,
  parseInstallables,
  parseList,
  parseFallback,
  parseEvaluate,
  parseStrategy,
  parseNumber,
  parsePort,
  parseProtocol,
  parsePushTarget,
  type PushTarget,
  orAuto,
  parseUser,
  refuseMode,
  SYSTEM
} from './fields.js'
import type { BuilderRequest } from './builder.js'
import { parseMachines } from './machines.js'
import { splitShellWords } from './shell-words.js'
import { checkProgramFits, parseRemoteProgram, programFor } from './remote-program.js'

export { AUTO, type Auto, type Protocol } from './fields.js'
export type { Evaluate, PushTarget } from './fields.js'

export {
  type Builder,
  type BuilderAccess,
  type BuilderRequest,
  builderWith,
  givenBuilders
} from './builder.js'

/** Everything the action was asked to do, validated before anything is written. */
export interface Settings {
  builders: BuilderRequest[]
  /** The key every builder accepts; masked in the log, written only to a file only its user can read. */
  privateKey: PrivateKey
  /** Lines of the known_hosts file the builders are pinned with. */
  knownHosts: KnownHostsLine[]
  buildersUseSubstitutes: boolean
  /** What `nix build` builds; with `args` also empty, the action only configures the runner. */
  installables: string[]
  /** Extra `nix build` arguments, already split into words. */
  args: string[]
  /** `--max-jobs` for the runner during the build. */
  localJobs: number
  requireRemote: boolean
  rebuild: boolean
  summary: boolean
  /** With several builders, build on the healthy ones when some fail the preflight. */
  skipUnhealthy: boolean
  /** Share one SSH connection per builder between all of Nix's sessions (ControlMaster). */
  multiplex: boolean
  /**
   * How the build reaches the builders: `hook`, Nix's distributed builds (one SSH session per derivation, every output
   * comes back); `remote-store`, the whole build in the builder's own store (`nix copy --from ssh-ng://…`, or `nix build --store`), only
   * the requested outputs come back; `auto` picks remote-store where it can serve the run.
   */
  strategy: Strategy
  /** remote-store: copy the requested outputs back to the runner (false: they stay on the builder). */
  copyBack: boolean
  /**
   * Where the installables are evaluated: `runner` (the default), or `builder`: the flake and its locked inputs go to
   * the builder's store, whose own `nix build` evaluates and builds them there (builder-eval.ts in nix/).
   */
  evaluate: Evaluate
  /** remote-store: the store the builder copies the outputs to after the build (`push-to`, `push-key`). */
  pushTo?: PushTarget
  /** What to do when no builder can be used: fail the step, or build on the runner (with a warning). */
  fallback: 'fail' | 'local'
  /** Attempts after the first when a builder is lost mid-build (transient failures only, never a failed builder). */
  retries: number
  /** Build mode: a builder with less free space in its store's filesystem, in GiB, is passed over; 0: none is. */
  minFreeGib: number
  /** `ssh-private-key` is empty and `fallback: local` allows it (a pull request from a fork gets no secrets). */
  keyMissing: boolean
  /** What the inputs said that the action replaced or filled in (a key path in `builders`): for the log. */
  notices: string[]
}

export type Strategy = 'hook' | 'remote-store' | 'auto'

/** What the canary action was asked to do: the builders as the build reads them, and the thresholds. */
export interface CanarySettings extends Settings {
  canary: CanaryThresholds
}

/** What the canary measures each builder against. */
export interface CanaryThresholds {
  /** Size of the input sent to each builder and of the output it sends back. */
  payloadMb: number
  maxConnectMs: number
  maxBuildSeconds: number
  minFreeGb: number
  /** Warn when a build or transfer takes this many times its recent median. */
  trendFactor: number
}

/** Raw input values by name, as the runner passes them (empty string when unset). */
export type InputReader = (name: Input) => string

/** Facts about the runner that defaults depend on. */
export interface SettingsDefaults {
  /** The runner's own Nix `system`, the default for `systems`. */
  system: string
}

export function parseSettings(read: InputReader, defaults: SettingsDefaults): Settings {
  const { builders, knownHosts, notices } = parseBuilderInputs(read, defaults)
  const { privateKey, fallback, keyMissing } = parseKeyInputs(read)
  const { installables, args, strategy, evaluate, pushTo } = parseBuildInputs(read)
  const settings: Settings = {
    builders,
    privateKey,
    knownHosts,
    buildersUseSubstitutes: parseBoolean(
      Input.BuildersUseSubstitutes,
      read(Input.BuildersUseSubstitutes),
      true
    ),
    installables,
    args,
    localJobs: parseCount(Input.LocalJobs, read(Input.LocalJobs).trim() || '0', 0),
    requireRemote: parseBoolean(Input.RequireRemote, read(Input.RequireRemote), true),
    rebuild: parseBoolean(Input.Rebuild, read(Input.Rebuild), false),
    summary: parseBoolean(Input.Summary, read(Input.Summary), true),
    skipUnhealthy: parseBoolean(Input.SkipUnhealthy, read(Input.SkipUnhealthy), false),
    multiplex: parseBoolean(Input.Multiplex, read(Input.Multiplex), true),
    strategy,
    copyBack: parseBoolean(Input.CopyBack, read(Input.CopyBack), true),
    evaluate,
    fallback,
    retries: parseCount(Input.Retries, read(Input.Retries).trim() || '1', 0),
    minFreeGib: parseCount(Input.MinFreeGib, read(Input.MinFreeGib).trim() || '0', 0),
    keyMissing,
    notices
  }
  if (pushTo !== undefined) settings.pushTo = pushTo
  return settings
}

/**
 * The canary action's settings: its own inputs read as the build reads them, the build's others at their defaults
 * (`strategy: hook`: the canary builds through Nix's build hook, one builder at a time), and the thresholds.
 */
export function parseCanarySettings(read: InputReader, defaults: SettingsDefaults): CanarySettings {
  const own: InputReader = name => (CANARY_INPUTS.includes(name) ? read(name) : '')
  return { ...parseSettings(own, defaults), strategy: 'hook', canary: parseCanaryThresholds(own) }
}

/** The builders from `host` and from `builders`, in that order, and the known_hosts lines that pin them. */
function parseBuilderInputs(
  read: InputReader,
  defaults: SettingsDefaults
): Pick<Settings, 'builders' | 'knownHosts' | 'notices'> {
  const single = parseHostBuilder(read, defaults)
  const builders: BuilderRequest[] = single === undefined ? [] : [single.builder]
  const knownHosts: KnownHostsLine[] = single?.pin === undefined ? [] : [single.pin]
  knownHosts.push(...parseKnownHosts(read(Input.KnownHosts)))

  const { machines, notices } = parseMachines(read(Input.Builders), defaults.system)
  for (const { hostKey, ...machine } of machines) {
    // A host key in the line pins the builder beside any `known-hosts` line for it: ssh accepts either.
    builders.push({ ...machine, pinInput: hostKey === undefined ? Input.KnownHosts : Input.Builders })
    if (hostKey !== undefined)
      knownHosts.push({ hosts: knownHostsName(machine.host, machine.port), key: hostKey })
  }

  placeRemotePrograms(builders, read(Input.RemoteProgram))

  if (builders.length === 0) {
    throw new InputError(
      Input.Host,
      `no builder is configured. Set '${Input.Host}', '${Input.User}', '${Input.SshPrivateKey}' and ` +
        `'${Input.HostPublicKey}', or list builders in '${Input.Builders}'`
    )
  }
  return { builders, knownHosts, notices }
}

/** The builder the single-builder inputs (`host`, `user`, …) describe, if `host` is set, and its pinned host key. */
function parseHostBuilder(
  read: InputReader,
  defaults: SettingsDefaults
): { builder: BuilderRequest; pin?: KnownHostsLine } | undefined {
  const host = read(Input.Host).trim()
  if (host === '') {
    for (const input of [Input.User, Input.HostPublicKey]) {
      if (read(input).trim() !== '') {
        throw new InputError(
          input,
          `is set but '${Input.Host}' is not; set '${Input.Host}' to the builder's address`
        )
      }
    }
    return undefined
  }
  const port = parsePort(Input.Port, read(Input.Port).trim() || '22')
  const builder: BuilderRequest = {
    protocol: parseProtocol(Input.Protocol, read(Input.Protocol).trim() || 'ssh-ng'),
    host: parseHost(Input.Host, host),
    port,
    user: parseUser(Input.User, read(Input.User).trim()),
    systems: orAuto(read(Input.Systems), value =>
      parseList(Input.Systems, value, SYSTEM, 'a Nix system name like x86_64-linux')
    ),
    maxJobs: orAuto(read(Input.MaxJobs), value => parseCount(Input.MaxJobs, value.trim() || '1', 1)),
    speedFactor: parseCount(Input.SpeedFactor, read(Input.SpeedFactor).trim() || '1', 1),
    supportedFeatures: orAuto(read(Input.SupportedFeatures), value =>
      parseList(Input.SupportedFeatures, value, FEATURE, 'a feature name')
    ),
    mandatoryFeatures: parseList(
      Input.MandatoryFeatures,
      read(Input.MandatoryFeatures),
      FEATURE,
      'a feature name'
    ),
    origin: `input '${Input.Host}'`,
    pinInput: Input.HostPublicKey
  }
  if (builder.systems.length === 0) {
    builder.systems = [defaults.system]
    builder.systemDefaulted = true
  }
  // Without a pinned key the preflight fails and prints the builder's, so the user can check it and pin it.
  const hostKey = parseHostPublicKey(read(Input.HostPublicKey))
  if (hostKey === undefined) return { builder }
  return { builder, pin: { hosts: knownHostsName(builder.host, builder.port), key: hostKey } }
}

/** The `known-hosts` input's lines, skipping blank lines and comments. */
function parseKnownHosts(value: string): KnownHostsLine[] {
  const lines: KnownHostsLine[] = []
  for (const [index, line] of value.split('\n').entries()) {
    if (line.trim() === '' || line.trim().startsWith('#')) continue
    if (CONTROL.test(line.replace(/\r$/, '').replace(/\t/g, ' '))) {
      throw new InputError(Input.KnownHosts, `line ${index + 1} contains a control character`)
    }
    const parsed = parseKnownHostsLine(line)
    if (typeof parsed === 'string') throw new InputError(Input.KnownHosts, `line ${index + 1}: ${parsed}`)
    lines.push(parsed)
  }
  return lines
}

/** The SSH key, or none when it is empty and `fallback: local` lets the run build on the runner without it. */
function parseKeyInputs(read: InputReader): Pick<Settings, 'privateKey' | 'fallback' | 'keyMissing'> {
  const rawKey = read(Input.SshPrivateKey)
  const fallback = parseFallback(read(Input.Fallback))
  const keyMissing = rawKey.trim() === '' && fallback === 'local'
  if (rawKey.trim() === '' && !keyMissing) {
    throw new InputError(
      Input.SshPrivateKey,
      'is required: give the private key (no passphrase) that the builder accepts, from a secret, e.g. ' +
        '`ssh-private-key: ${{ secrets.NIX_BUILDER_SSH_KEY }}`'
    )
  }
  const privateKey = keyMissing ? NO_KEY : parsePrivateKey(rawKey)
  if (typeof privateKey === 'string') throw new InputError(Input.SshPrivateKey, privateKey)
  return { privateKey, fallback, keyMissing }
}

/** What to build and how: the installables, the extra arguments, the strategy, where to evaluate and push. */
function parseBuildInputs(
  read: InputReader
): Pick<Settings, 'installables' | 'args' | 'strategy' | 'evaluate' | 'pushTo'> {
  const installables = parseInstallables(read(Input.Installables))
  let args: string[]
  try {
    args = splitShellWords(read(Input.Args))
  } catch (error) {
    throw new InputError(Input.Args, `cannot be split into words: ${(error as Error).message}`)
  }
  const strategy = parseStrategy(read(Input.Strategy))
  const evaluate = parseEvaluate(read(Input.Evaluate))
  if (evaluate === 'builder') checkBuilderEvaluation({ installables, args, strategy })
  const pushTo = parsePushTarget(read(Input.PushTo), read(Input.PushKey))
  if (pushTo === undefined) return { installables, args, strategy, evaluate }
  checkPushRequest({ installables, args, strategy })
  return { installables, args, strategy, evaluate, pushTo }
}

function parseCanaryThresholds(read: InputReader): CanaryThresholds {
  return {
    payloadMb: parseNumber(Input.CanaryPayloadMb, read(Input.CanaryPayloadMb), 8, 0, 4096),
    maxConnectMs: parseNumber(Input.MaxConnectMs, read(Input.MaxConnectMs), 2000, 0, 600_000),
    maxBuildSeconds: parseNumber(Input.MaxBuildSeconds, read(Input.MaxBuildSeconds), 300, 0, 86_400),
    minFreeGb: parseNumber(Input.MinFreeGb, read(Input.MinFreeGb), 10, 0, 1_000_000),
    trendFactor: parseNumber(Input.TrendFactor, read(Input.TrendFactor), 3, 1, 1000)
  }
}

/** The key of a run with `fallback: local` and an empty `ssh-private-key`: nothing is offloaded, nothing uses it. */
const NO_KEY: PrivateKey = { text: '', type: 'none', publicLine: '' }

/** Whether the action runs `nix build` at all, or only configures the runner for later steps. */
export function wantsBuild(settings: Settings): boolean {
  return settings.installables.length > 0 || settings.args.length > 0
}

function parseHostPublicKey(raw: string): HostKey | undefined {
  const line = raw.trim()
  if (line === '') return undefined
  if (line.includes('\n') || CONTROL.test(line.replace(/\t/g, ' '))) {
    throw new InputError(
      Input.HostPublicKey,
      'must be one line: the builder\'s host key, "ssh-ed25519 AAAA… comment"'
    )
  }
  const tokens = line.split(/[ \t]+/)
  // A known_hosts line ("host type key") is accepted too: people copy whichever they have.
  const start = parseHostKey(tokens[0] ?? '', tokens[1] ?? '')
  const key =
    typeof start === 'string' && tokens.length >= 3 ? parseHostKey(tokens[1] ?? '', tokens[2] ?? '') : start
  if (typeof key === 'string') {
    throw new InputError(
      Input.HostPublicKey,
      `${typeof start === 'string' ? start : key}; expected the builder's host key line, "ssh-ed25519 AAAA… comment"`
    )
  }
  return key
}

/** The `remote-program` input, for every builder whose `builders` line names none of its own. */
function placeRemotePrograms(builders: BuilderRequest[], value: string): void {
  const remote = parseRemoteProgram(value)
  if (remote === undefined) return
  for (const builder of builders) {
    checkProgramFits(remote, builder.protocol, builder.origin)
    builder.remoteProgram ??= programFor(builder.protocol, remote)
  }
}

/**
 * Reads the inputs `names` once, as @actions/core does, then takes every INPUT_* variable out of this process's
 * environment: a library that starts processes with the whole environment (@actions/cache runs tar and zstd) would
 * otherwise hand them the private key. The settings are read from the answer, as often as they are parsed; an input
 * not in `names` reads as empty.
 */
export function takeInputs(names: readonly Input[]): InputReader {
  const values = new Map<Input, string>(names.map(name => [name, core.getInput(name)]))
  for (const variable of Object.keys(process.env)) {
    if (/^INPUT_/i.test(variable)) Reflect.deleteProperty(process.env, variable)
  }
  return name => values.get(name) ?? ''
}

/** The main action's inputs (takeInputs); `mode: canary` is refused with the way to the canary action. */
export function takeBuildInputs(): InputReader {
  const mode = core.getInput(MODE)
  const read = takeInputs(BUILD_INPUTS)
  refuseMode(mode)
  return read
}

/** The canary action's inputs (takeInputs). */
export function takeCanaryInputs(): InputReader {
  return takeInputs(CANARY_INPUTS)
}

/**
 * `settings` for a runner whose Nix names its system `system`: inputs are parsed before the runner probe ends, with
 * the system Node reports, and the builders whose systems were not given take the one Nix reports instead.
 */
export function withRunnerSystem<S extends Settings>(settings: S, system: string): S {
  return {
    ...settings,
    builders: settings.builders.map(builder =>
      builder.systemDefaulted === true ? { ...builder, systems: [system] } : builder
    )
  }
}
