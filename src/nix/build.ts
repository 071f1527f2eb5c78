import * as core from '@actions/core'
import { randomBytes } from 'node:crypto'
import { type BuildRecord, type CopyRecord, type LogObserver, NixLogReader } from './ledger.js'
import { LineSplitter, type NixEvent } from './nix-log.js'
import { NIX_FEATURES } from './nix-cli.js'
import { type ProgressOptions, ProgressTracker } from './progress.js'
import { StorePathFilter, storeDirOf } from './nix-log.js'
import { runCommand } from '../base/index.js'
import type { Settings } from '../inputs/index.js'

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
 * Runs the build, streaming each derivation's log lines live as `name> line`, and keeps the ledger. `progress` names
 * the builders in the live progress lines (by default `b<N>` for the action's Nth builder, see machineLabel).
 */
export async function runBuild(
  settings: Settings,
  env: NodeJS.ProcessEnv,
  progress: ProgressOptions = {}
): Promise<BuildOutcome> {
  return runNixBuild(buildArguments(settings), env, progress)
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
  progress: ProgressOptions = {},
  watch?: (event: NixEvent) => void
): Promise<BuildOutcome> {
  const track = `nix ${args[NIX_FEATURES.length] ?? 'build'}`
  return runLoggedBuild({ program: 'nix', args, track }, env, progress, watch)
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
  progress: ProgressOptions = {},
  watch?: (event: NixEvent) => void
): Promise<BuildOutcome> {
  const tracker = new ProgressTracker(Date.now, progress)
  const observer: LogObserver = {
    event: event => {
      tracker.event(event)
      watch?.(event)
    },
    progressLine: line => tracker.progressLine(line)
  }
  const storeDir = storeDirOf(env)
  const reader = new NixLogReader(line => core.info(line), Date.now, observer, new StorePathFilter(storeDir))
  const splitter = new LineSplitter(line => reader.readLine(line))
  // Build logs come from the builder: keep a line like "::add-mask::" or "::error::" in them from acting on the runner.
  const resumeToken = randomBytes(16).toString('hex')
  core.info(`::stop-commands::${resumeToken}`)
  // A timer rather than the log: a long build may print nothing for minutes while its figures have changed.
  const ticker = setInterval(() => {
    const line = tracker.line()
    if (line !== undefined) core.info(line)
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
    core.info(`::${resumeToken}::`)
  }
  const outPaths = reader.paths.keep(parseOutPaths(result.stdout.toString()))
  const refused = reader.paths.warning("Nix's log of the build")
  if (refused !== undefined) core.warning(refused, { title: 'nix-offload: not a store path' })
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
