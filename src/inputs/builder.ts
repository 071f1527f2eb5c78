import type { Input } from './constants.js'
import { AUTO, type Auto, type Protocol } from './fields.js'

/**
 * How a builder is named everywhere the action speaks of one: logs, errors, the report and the summary; and the one
 * record of a configured builder, which every stage after the preflight takes.
 */

/**
 * What the action's SSH key may run on a builder: any command through the user's shell, or only one of Nix's own
 * programs, forced by the builder (sshd's ForceCommand, `command=` in authorized_keys, NixOS `nix.sshServe`).
 */
export type BuilderAccess = 'shell' | 'nix-daemon' | 'nix-store --serve'

/** One remote machine, with every value known; every field is safe to put in its file. */
export interface Builder {
  protocol: Protocol
  /** DNS name or IP address (IPv6 without brackets) */
  host: string
  port: number
  /** SSH user on the builder */
  user: string
  /** Nix systems it builds for, e.g. x86_64-linux */
  systems: string[]
  maxJobs: number
  speedFactor: number
  supportedFeatures: string[]
  mandatoryFeatures: string[]
  /** Which input described it, for error messages: `host` or `builders` line N. */
  origin: string
  /** The input that pins its host key: `host-public-key`, `known-hosts`, or `builders` (its column 8). */
  pinInput: Input
  /**
   * Full path of the program Nix runs there: a `builders` line's `?remote-program=`, else from the `remote-program`
   * input; unset: `nix-daemon` or `nix-store` from its PATH.
   */
  remoteProgram?: string
  /** Found by the preflight; unset before it, or when it found a shell. */
  access?: BuilderAccess
  /** How busy the preflight found it; unset before it, or when its key runs no shell command. */
  load?: BuilderLoad
}

/** How busy a builder is, as its shell told the preflight; each figure unset where it could not be read. */
export interface BuilderLoad {
  cores?: number
  /** The 1-minute load average. */
  loadAverage?: number
  /** Build users with a process running: one per build its nix-daemon runs (docs/nix.md, "Builders chosen by load"). */
  runningBuilds?: number
  /** Free bytes in the filesystem of its /nix/store. */
  storeFreeBytes?: number
}

/**
 * A builder's free capacity: cores / (1 + busy), where busy is the load average, or the running builds when more (a
 * build just started has not raised the load average yet). Undefined when the cores or both figures are unknown.
 */
export function freeCapacity(load: BuilderLoad | undefined): number | undefined {
  if (load?.cores === undefined) return undefined
  const { loadAverage, runningBuilds } = load
  if (loadAverage === undefined && runningBuilds === undefined) return undefined
  return load.cores / (1 + Math.max(loadAverage ?? 0, runningBuilds ?? 0))
}

/**
 * Each builder's free capacity, a builder whose load is unknown taking the mean of the known ones: it is neither
 * preferred nor passed over. Undefined when no builder's load is known.
 */
export function capacities(builders: readonly Pick<Builder, 'load'>[]): number[] | undefined {
  const known = builders.map(builder => freeCapacity(builder.load))
  const figures = known.filter(value => value !== undefined)
  if (figures.length === 0) return undefined
  const neutral = figures.reduce((sum, value) => sum + value, 0) / figures.length
  return known.map(value => value ?? neutral)
}

/**
 * The speed-factors the machines file gives the builders, so that Nix's scheduler (which prefers the machine with the
 * least of its own jobs per speed-factor) prefers a builder with more free capacity: each configured speed-factor
 * times ten times its builder's free capacity, as a whole number of at least 1 (what every Nix parses). As configured
 * with one builder, or when no builder's load is known.
 */
export function loadedSpeedFactors(builders: readonly Pick<Builder, 'load' | 'speedFactor'>[]): number[] {
  const free = builders.length > 1 ? capacities(builders) : undefined
  return builders.map((builder, index) => {
    const capacity = free?.[index]
    return capacity === undefined
      ? builder.speedFactor
      : Math.max(1, Math.round(builder.speedFactor * 10 * capacity))
  })
}

/**
 * The builders in the order they should be tried, the one with the most free capacity first (in tenths, as the
 * machines file has it: a difference the load average's noise makes keeps the given order).
 */
export function byFreeCapacity<Candidate extends Pick<Builder, 'load'>>(
  builders: readonly Candidate[]
): Candidate[] {
  const free = capacities(builders)
  if (free === undefined) return [...builders]
  const tenths = free.map(value => Math.round(value * 10))
  return builders
    .map((builder, index) => ({ builder, rank: tenths[index] ?? 0 }))
    .sort((a, b) => b.rank - a.rank)
    .map(entry => entry.builder)
}

/** A builder as the inputs describe it: some values may be `auto`, detected by the preflight. */
export interface BuilderRequest extends Omit<Builder, 'systems' | 'maxJobs' | 'supportedFeatures'> {
  systems: string[] | Auto
  maxJobs: number | Auto
  supportedFeatures: string[] | Auto
  /** Its systems were not given: it took the runner's, which the runner probe may correct (withRunnerSystem). */
  systemDefaulted?: boolean
}

/** The builders as given, when none leaves a value for the preflight to detect (`auto`); otherwise undefined. */
export function givenBuilders(requests: BuilderRequest[]): Builder[] | undefined {
  const builders: Builder[] = []
  for (const request of requests) {
    const { systems, maxJobs, supportedFeatures } = request
    if (systems === AUTO || maxJobs === AUTO || supportedFeatures === AUTO) return undefined
    builders.push(builderWith(request, systems, maxJobs, supportedFeatures))
  }
  return builders
}

/** The builder a request describes, with these values in place of `auto` (each system once). */
export function builderWith(
  request: BuilderRequest,
  systems: string[],
  maxJobs: number,
  supportedFeatures: string[]
): Builder {
  return { ...request, systems: [...new Set(systems)], maxJobs, supportedFeatures }
}

/** host:port, with an IPv6 address in brackets. */
export function hostPort(builder: { host: string; port: number }): string {
  return builder.host.includes(':') ? `[${builder.host}]:${builder.port}` : `${builder.host}:${builder.port}`
}

/** How users know a builder: user@host:port. */
export function label(builder: { user: string; host: string; port: number }): string {
  return `${builder.user}@${hostPort(builder)}`
}

/**
 * A builder as the run configures it, made once from the admitted builders: its inputs and preflight facts (access,
 * systems, features, max-jobs), reached through its own ssh Host alias, and named by Nix by its store URI.
 */
export interface ConfiguredBuilder extends Builder {
  /** The ssh config Host alias, also the host part of the store URI Nix prints in its log. */
  alias: string
  /**
   * e.g. ssh-ng://nixbuilder@nix-offload-1a2b3c-1, with `?remote-program=…` when that input is set: what Nix names
   * the machine in `building … on '…'`.
   */
  storeUri: string
}

/** The records of the run `token`'s builders, in order: the `index`th is reached as `nix-offload-<token>-<index+1>`. */
export function configureBuilders(builders: readonly Builder[], token: string): ConfiguredBuilder[] {
  return builders.map((builder, index): ConfiguredBuilder => {
    const alias = `nix-offload-${token}-${index + 1}`
    return { ...builder, alias, storeUri: storeUriOf(builder, alias) }
  })
}

/**
 * The builder's store as Nix is given it everywhere (machines file, `--store`, `nix copy --from`), and as Nix names
 * the machine in its log: the `remote-program` setting rides in the query, which Nix keeps in that name.
 */
function storeUriOf(builder: Builder, alias: string): string {
  const uri = `${builder.protocol}://${builder.user}@${alias}`
  return builder.remoteProgram === undefined ? uri : `${uri}?remote-program=${builder.remoteProgram}`
}

/**
 * The configured builder a machine name from Nix's log names (the ledger keeps the name Nix printed; '' is the
 * runner). Nix's build lines name the store with its URI's settings, its connection errors without them.
 */
export function builderNamed<Named extends { storeUri: string }>(
  builders: readonly Named[],
  machine: string | undefined
): Named | undefined {
  if (machine === undefined || machine === '') return undefined
  const withoutSettings = (uri: string): string => uri.replace(/\?.*$/, '')
  return (
    builders.find(builder => builder.storeUri === machine) ??
    builders.find(builder => withoutSettings(builder.storeUri) === withoutSettings(machine))
  )
}
