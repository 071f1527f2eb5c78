import { type BuildRecord, type CopyRecord, type LogObserver, NixLogReader } from './ledger.js'
import { LineSplitter, type NixEvent } from './nix-log.js'
import { NIX_FEATURES } from './nix-cli.js'
import { type BuilderNames, ProgressTracker } from './progress.js'
import { StorePathFilter, storeDirOf } from './nix-log.js'
import { logLine, logWarning, runCommand, stopCommands } from '../base/index.js'
import { Input, type Settings } from '../inputs/index.js'

export interface BuildOutcome {
  exitCode: number
  builds: BuildRecord[]
  outPaths: string[]
  /** Nix's error and warning messages, without colours: what the diagnosis reads. */
  messages: string[]
  /** The last log lines of each derivation, to show with a failure. */
  lastLines: Map<string, string[]>
  /** Store paths copied to or from builders, with their times. */
  copies: CopyRecord[]
}

/**
 * The `nix build` command line: internal-json for the proof, `--json` for the out paths (2.8 lacks --print-out-paths).
 * Its `--json` stays valid and silent on 2.34: the "'--json' without '--json-format' is deprecated" warning belongs to
 * `nix path-info`, the only command with `--json-format` (2.34, 2.35).
 */
export function buildArguments(settings: Settings): string[] {
  // The action's options come after the user's `args`, so a later duplicate cannot switch off the proof.
  const args = [...NIX_FEATURES, 'build', ...settings.args, '--log-format', 'internal-json', '--json']
  args.push('--max-jobs', String(settings.localJobs))
  if (settings.rebuild) args.push('--rebuild')
  // A `result` link is a GC root left in the workspace; only make one when the user asks for it.
  if (!asksForOutLinks(settings.args) && !settings.args.includes('--no-link')) args.push('--no-link')
  return [...args, ...settings.installables]
}

/** Whether the user's `args` ask for out-links (`-o`, `--out-link`, `--out-link=…`). */
export function asksForOutLinks(args: string[]): boolean {
  return args.some(arg => /^(-o|--out-link)$/.test(arg) || arg.startsWith('--out-link='))
}

/**
 * Runs the build, streaming each derivation's log lines live as `[builder] name> line`, and keeps the ledger.
 * `names` names the builders in the live progress lines and in those tags.
 */
export async function runBuild(
  settings: Settings,
  env: NodeJS.ProcessEnv,
  names: BuilderNames = {}
): Promise<BuildOutcome> {
  return runNixBuild(buildArguments(settings), env, names)
}

/** The tag of a log line of a build on a machine that the step's names do not name. */
const OTHER_MACHINE = 'another machine'

/**
 * The tag before a derivation's log line: the builder it is built on, as the step names it (`[nixbuilder@b1:22] `),
 * and none for the runner. The name comes from the step's own list of builders, never from the log, which a builder
 * writes: a machine the list does not name is tagged `[another machine]`.
 */
export function machineTag(machine: string, names: BuilderNames): string {
  const name = machine === '' ? names.local : (names.labels?.get(machine) ?? OTHER_MACHINE)
  return name === undefined ? '' : `[${name}] `
}

/** How often the live progress is asked for a line; it prints one at most every PROGRESS_INTERVAL_MS. */
const PROGRESS_POLL_MS = 1_000

/**
 * Runs one `nix build` command line (from buildArguments, perhaps with more options), streaming its log live and
 * reading it into the ledger: the one place both strategies build through. While it runs, a progress line (progress.ts)
 * now and then says how far it has come.
 */
export async function runNixBuild(
  args: string[],
  env: NodeJS.ProcessEnv,
  names: BuilderNames = {},
  watch?: (event: NixEvent) => void
): Promise<BuildOutcome> {
  const track = `nix ${args[NIX_FEATURES.length] ?? 'build'}`
  return runLoggedBuild({ program: 'nix', args, track }, env, names, watch)
}

/**
 * A command whose stderr is a `nix build --log-format internal-json` log and whose stdout is its `--json`: `nix`
 * itself, or `ssh` running the builder's own `nix build` there (builder-eval.ts), whose stderr ssh relays.
 */
export interface LoggedBuild {
  program: 'nix' | 'ssh'
  args: string[]
  /** The label the post step knows the process by, should main be killed. */
  track: string
}

/** Runs a LoggedBuild as runNixBuild runs `nix build`. */
export async function runLoggedBuild(
  command: LoggedBuild,
  env: NodeJS.ProcessEnv,
  names: BuilderNames = {},
  watch?: (event: NixEvent) => void
): Promise<BuildOutcome> {
  const tracker = new ProgressTracker(Date.now, names)
  const observer: LogObserver = {
    event: event => {
      tracker.event(event)
      watch?.(event)
    },
    progressLine: line => tracker.progressLine(line)
  }
  const storeDir = storeDirOf(env)
  const print = (line: string, machine?: string): void =>
    logLine(machine === undefined ? line : `${machineTag(machine, names)}${line}`)
  const reader = new NixLogReader(print, Date.now, observer, new StorePathFilter(storeDir))
  const splitter = new LineSplitter(line => reader.readLine(line))
  // Build logs come from the builder: keep a line like "::add-mask::" or "::error::" in them from acting on the runner.
  const resume = stopCommands()
  // A timer rather than the log: a long build may print nothing for minutes while its figures have changed.
  const ticker = setInterval(() => {
    const line = tracker.line()
    if (line !== undefined) logLine(line)
  }, PROGRESS_POLL_MS)
  let result
  try {
    // The build: bounded by the job's own timeout only, as a build may rightly take hours.
    result = await runCommand(command.program, command.args, {
      env,
      onStderr: chunk => splitter.push(chunk),
      track: command.track,
      timeoutMs: 'none'
    })
    splitter.end()
  } finally {
    clearInterval(ticker)
    resume()
  }
  const outPaths = reader.paths.keep(parseOutPaths(result.stdout.toString()))
  const refused = reader.paths.warning("Nix's log of the build")
  if (refused !== undefined) logWarning(refused, { title: 'nix-offload: not a store path' })
  return {
    exitCode: result.code,
    builds: reader.ledger.records(),
    outPaths,
    messages: reader.messages,
    lastLines: reader.lastLines,
    copies: reader.copyLedger.records()
  }
}

/** The first line of Nix's last error, for a step error when no diagnosis explains the failure. */
export function lastError(outcome: Pick<BuildOutcome, 'messages'>): string {
  return (
    outcome.messages
      .at(-1)
      ?.replace(/^error:\s*/, '')
      .split('\n')[0] ?? 'see the log above'
  )
}

/** `nix build --json` stdout: `[{"drvPath": …, "outputs": {"out": "/nix/store/…"}}]`. */
export function parseOutPaths(stdout: string): string[] {
  if (stdout.trim() === '') return []
  let parsed: unknown
  try {
    parsed = JSON.parse(stdout)
  } catch {
    return []
  }
  if (!Array.isArray(parsed)) return []
  const paths: string[] = []
  for (const item of parsed) {
    const outputs: unknown =
      typeof item === 'object' && item !== null && 'outputs' in item ? item.outputs : undefined
    if (typeof outputs !== 'object' || outputs === null) continue
    for (const path of Object.values(outputs)) if (typeof path === 'string') paths.push(path)
  }
  return paths
}

/*
 * The user's `args`, split by what each option acts on. In a builder's store the evaluation (`nix build --dry-run`)
 * and the build from its derivations are two commands: an evaluation option on the build (`--file`, `--expr`, `--arg`)
 * would make it evaluate again or conflict with the derivations it is given, and a build option on the evaluation
 * (`--out-link`, `--rebuild`) has nothing to act on.
 */

/**
 * - `evaluation`: what the expression is and how it is evaluated; a word of `args` that is no option's value is an
 *   installable, also evaluated;
 * - `build`: how derivations are realised (`nix copy` takes these too);
 * - `result`: what `nix build` makes or prints of the outputs: links, a profile, JSON (`nix copy` has none of them);
 * - `common`: logging and settings, for every command. An option not listed here is common, with the words after it
 *   up to the next option, as its arity is not known: whatever it is, every command gets it.
 */
export type ArgRole = 'evaluation' | 'build' | 'result' | 'common'

/** Options by name, with the number of values after them (Nix 2.8–2.34's `nix build`). */
const OPTIONS: Record<ArgRole, Record<string, number>> = {
  evaluation: {
    '--arg': 2,
    '--argstr': 2,
    '--arg-from-file': 2,
    '--arg-from-stdin': 1,
    '-I': 1,
    '--include': 1,
    '--impure': 0,
    '-f': 1,
    '--file': 1,
    '--expr': 1,
    '--stdin': 0,
    '--override-input': 2,
    '--override-flake': 2,
    '--update-input': 1,
    '--inputs-from': 1,
    '--recreate-lock-file': 0,
    '--no-update-lock-file': 0,
    '--no-write-lock-file': 0,
    '--commit-lock-file': 0,
    '--no-registries': 0,
    '--reference-lock-file': 1,
    '--output-lock-file': 1,
    '--show-trace': 0,
    '--debugger': 0,
    '--eval-store': 1,
    '--eval-cache': 0,
    '--no-eval-cache': 0,
    '--pure-eval': 0,
    '--no-pure-eval': 0,
    '--restrict-eval': 0,
    '--allowed-uris': 1,
    '--allow-import-from-derivation': 0,
    '--no-allow-import-from-derivation': 0
  },
  build: {
    '-j': 1,
    '--max-jobs': 1,
    '--cores': 1,
    '-k': 0,
    '--keep-going': 0,
    '-K': 0,
    '--keep-failed': 0,
    '--fallback': 0,
    '--rebuild': 0,
    '--repair': 0,
    '--builders': 1,
    '--max-silent-time': 1,
    '--timeout': 1,
    '--sandbox': 0,
    '--no-sandbox': 0,
    '-Q': 0,
    '--no-build-output': 0,
    '--keep-outputs': 0,
    '--keep-derivations': 0
  },
  result: {
    '-o': 1,
    '--out-link': 1,
    '--no-link': 0,
    '--profile': 1,
    '--json': 0,
    '--print-out-paths': 0,
    '--dry-run': 0
  },
  common: {
    '--option': 2,
    '-L': 0,
    '--print-build-logs': 0,
    '-v': 0,
    '--verbose': 0,
    '--quiet': 0,
    '--debug': 0,
    '--log-format': 1,
    '--offline': 0,
    '--refresh': 0,
    '--experimental-features': 1,
    '--extra-experimental-features': 1
  }
}

/** One option with its values, or a word of its own, as the user wrote it. */
interface ArgGroup {
  role: ArgRole
  words: string[]
}

/** The role of an option by name (`--name=value` by its name); undefined for one not listed. */
function roleOf(option: string): { role: ArgRole; arity: number } | undefined {
  const name = option.replace(/=.*$/, '')
  for (const role of ['evaluation', 'build', 'result', 'common'] as const) {
    const arity = OPTIONS[role][name]
    if (arity !== undefined) return { role, arity: name === option ? arity : 0 }
  }
  return undefined
}

/** Splits `args` into options with their values, each with its role, in the order given. */
export function groupArgs(args: readonly string[]): ArgGroup[] {
  const groups: ArgGroup[] = []
  let unknown: ArgGroup | undefined
  for (let i = 0; i < args.length; i++) {
    const word = args[i] ?? ''
    if (!word.startsWith('-') || word === '-') {
      // A value of the unlisted option before it, or else an installable.
      if (unknown !== undefined) unknown.words.push(word)
      else groups.push({ role: 'evaluation', words: [word] })
      continue
    }
    const known = roleOf(word)
    if (known === undefined) {
      unknown = { role: 'common', words: [word] }
      groups.push(unknown)
      continue
    }
    unknown = undefined
    groups.push({ role: known.role, words: args.slice(i, i + 1 + known.arity) })
    i += known.arity
  }
  return groups
}

/** The words of `args` whose role is among `roles`, in the order given. */
export function argsFor(args: readonly string[], roles: readonly ArgRole[]): string[] {
  return groupArgs(args).flatMap(group => (roles.includes(group.role) ? group.words : []))
}

/** What the evaluation that finds the derivations takes. */
export const forEvaluation = (args: readonly string[]): string[] => argsFor(args, ['evaluation', 'common'])

/** What `nix build` from the derivations takes. */
export const forBuild = (args: readonly string[]): string[] => argsFor(args, ['build', 'result', 'common'])

/** What `nix copy`, building from the derivations, takes: it has none of `nix build`'s result options. */
export const forCopy = (args: readonly string[]): string[] => argsFor(args, ['build', 'common'])

/** What the `nix build` that only makes the out-links here, of outputs already here, takes. */
export const forLinks = (args: readonly string[]): string[] => argsFor(args, ['result', 'common'])

/** What Nix compares of a machine with what a derivation needs: the machines line's systems and features. */
export interface MachineOffer {
  systems: string[]
  supportedFeatures: string[]
  mandatoryFeatures: string[]
}

/** What a derivation needs of a machine; `system` is undefined where Nix's message did not name it. */
export interface MachineNeed {
  system: string | undefined
  features: string[]
}

/**
 * Nix's own rule for sending a derivation to a machine (build-remote.cc, Machine::systemSupported, allSupported and
 * mandatoryMet in machines.cc): the system, all required features, and every mandatory feature required. A need whose
 * system is unknown is not refused for it.
 */
export function fits(machine: MachineOffer, need: MachineNeed): boolean {
  return (
    (need.system === undefined || machine.systems.includes(need.system)) &&
    // A mandatory feature counts as supported (Machine::allSupported).
    need.features.every(
      feature => machine.supportedFeatures.includes(feature) || machine.mandatoryFeatures.includes(feature)
    ) &&
    machine.mandatoryFeatures.every(feature => need.features.includes(feature))
  )
}

/** Why the runner's store would refuse the builder's outputs on their way back, when `runner` says it would. */
export function copyBackRefused(
  settings: Pick<Settings, 'copyBack'>,
  runner?: { acceptsUnsignedPaths: boolean }
): string | undefined {
  if (runner === undefined || !settings.copyBack || runner.acceptsUnsignedPaths) return undefined
  return (
    "the runner's nix-daemon does not trust the runner user, so it would refuse the builder's unsigned outputs on " +
    `the way back. Add the runner user to trusted-users, or set '${Input.CopyBack}: false' to leave them on the builder.`
  )
}
