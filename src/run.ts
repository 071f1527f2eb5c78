import * as core from '@actions/core'
import {
  endGroup,
  failStep,
  logInfo,
  logNotice,
  Phase,
  phase,
  startGroup,
  trackChildren
} from './base/index.js'
import { preflight, type PreflightOutcome } from './builders/index.js'
import { canary } from './canary/index.js'
import { buildOnRunner } from './fallback.js'
import {
  Input,
  type InputReader,
  parseCanarySettings,
  parseSettings,
  type Settings,
  type SettingsDefaults,
  takeBuildInputs,
  takeCanaryInputs,
  withRunnerSystem
} from './inputs/index.js'
import { describeRelease } from './nix/index.js'
import { offload } from './offload.js'
import { SpeculativeConfiguration } from './speculative.js'
import {
  childRecorder,
  newToken,
  probeRunner,
  type RunnerFacts,
  runnerRelease,
  settingsForRunner
} from './runner/index.js'

/** What the preflight finds when it has nothing to check. */
const NO_PREFLIGHT: PreflightOutcome = { results: [], builders: [], warnings: [] }

/** The main action's step: validate, then build. An error fails the step, annotated once. */
export async function run(): Promise<void> {
  await failOnError(async () => {
    const started = startStep(takeBuildInputs(), parseSettings)
    // This job's token names everything it writes. The remote-store configuration, whose store check opens the SSH
    // master, starts now too when that strategy may serve the run (speculative.ts).
    const token = newToken()
    const speculation = SpeculativeConfiguration.atStepStart(started.early, token)
    const { facts, settings, checking } = await probed(started)
    if (settings.keyMissing) {
      await buildOnRunner(
        facts,
        settings,
        `'${Input.SshPrivateKey}' is empty (a workflow run from a fork's pull request gets no secrets)`,
        { preflight: [], stores: [] }
      )
      return
    }
    await offload({ facts, settings, token, speculation }, checking)
  })
}

/** The canary action's step: validate, then check every builder (canary/). Errors fail the step. */
export async function runCanary(): Promise<void> {
  await failOnError(async () => {
    const { facts, settings, checking } = await probed(startStep(takeCanaryInputs(), parseCanarySettings))
    await canary(facts, settings, await checking)
  })
}

/**
 * Runs a step's body with its processes recorded (the post step stops them if it is killed); errors fail the step,
 * their error line after the last phase's group has ended.
 */
async function failOnError(body: () => Promise<void>): Promise<void> {
  trackChildren(childRecorder())
  try {
    await body()
  } catch (error) {
    failStep(error)
  } finally {
    endGroup()
  }
}

/** A step as it starts: its inputs validated, the runner probe and the builders' preflight under way. */
interface StartedStep<S extends Settings> {
  /** The settings parsed with the system Node reports, before the probe names the runner's Nix system. */
  early: S
  /** The system Node reports, which `early` took for the runner's. */
  guess: string
  probing: Promise<RunnerFacts>
  preflighting: Promise<PreflightOutcome>
}

/**
 * Masks the key, validates the inputs, and starts the runner probe (several `nix` starts) and the builders' SSH
 * handshakes at once: they are independent. The inputs are parsed with the system Node reports standing in for Nix's
 * until the probe says.
 */
function startStep<S extends Settings>(
  read: InputReader,
  parse: (read: InputReader, defaults: SettingsDefaults) => S
): StartedStep<S> {
  maskPrivateKey(read(Input.SshPrivateKey))
  // The runner probe and the builders' checks, up to the builders' admission (offload.ts, canary.ts).
  startGroup(Phase.Preflight)
  const probing = phase('runner probe', probeRunner())
  probing.catch(() => undefined)
  const guess = nodeSystem()
  const early = parse(read, { system: guess })
  // Without a key (`fallback: local`) there is nothing to check: the build stays on the runner.
  const preflighting = early.keyMissing
    ? Promise.resolve(NO_PREFLIGHT)
    : phase(
        'preflight',
        preflight(
          early,
          probing.then(found => found.nixVersion)
        )
      )
  preflighting.catch(() => undefined)
  return { early, guess, probing, preflighting }
}

/**
 * Once the runner is probed: the settings for its Nix system and its Nix's quirks, and the preflight, run again when
 * the runner's system changed which systems a builder was given.
 */
async function probed<S extends Settings>(
  started: StartedStep<S>
): Promise<{ facts: RunnerFacts; settings: S; checking: Promise<PreflightOutcome> }> {
  const { early, guess, probing, preflighting } = started
  const facts = await probing
  const parsed = facts.system === guess ? early : withRunnerSystem(early, facts.system)
  describeRunner(facts, parsed)
  for (const notice of parsed.notices) logNotice(notice, { title: 'nix-offload: inputs' })
  const { settings, notice } = settingsForRunner(parsed, facts)
  if (notice !== undefined) logNotice(notice, { title: 'nix-offload: multiplexing off' })
  const checking =
    parsed === early || parsed.keyMissing
      ? preflighting
      : phase('preflight', preflight(parsed, Promise.resolve(facts.nixVersion)))
  return { facts, settings, checking }
}

/** The Nix system name for the machine Node runs on, e.g. x86_64-linux; the probe has the final word. */
function nodeSystem(): string {
  const arch: Record<string, string> = {
    x64: 'x86_64',
    arm64: 'aarch64',
    ia32: 'i686',
    arm: 'armv7l',
    riscv64: 'riscv64'
  }
  return `${arch[process.arch] ?? process.arch}-${process.platform}`
}

/**
 * The runner masks a multi-line secret line by line, so each line of the key body is registered (the BEGIN/END
 * armour is not secret, and masking it would hide it from error messages that explain the expected format).
 */
function maskPrivateKey(key: string): void {
  for (const line of key.split(/\r?\n/)) {
    const text = line.trim()
    if (text.length >= 8 && !text.startsWith('-----')) core.setSecret(text)
  }
}

function describeRunner(facts: RunnerFacts, settings: Settings): void {
  const daemon =
    facts.store === 'daemon'
      ? `nix-daemon, which ${facts.trusted ? 'trusts' : 'does not trust'} ${facts.userName}`
      : `no daemon (single-user, as ${facts.userName})`
  logInfo(`Runner: ${describeRelease(runnerRelease(facts))} on ${facts.system}, ${daemon}.`)
  logInfo(`Client key: ${settings.privateKey.type}, public half: ${settings.privateKey.publicLine}`)
}
