import * as core from '@actions/core'
import { failStep, logInfo, phase, trackChildren } from './base/index.js'
import { preflight, type PreflightOutcome } from './builders/index.js'
import { canary } from './canary/index.js'
import { buildOnRunner } from './fallback.js'
import { Input, parseSettings, type Settings, takeInputs, withRunnerSystem } from './inputs/index.js'
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

/** The main step: validate, then build (or run the canary). An error fails the step, annotated once. */
export async function run(): Promise<void> {
  // The build and the SSH masters, recorded while they run: the post step stops them if this step is killed.
  trackChildren(childRecorder())
  try {
    const read = takeInputs()
    maskPrivateKey(read(Input.SshPrivateKey))
    // The runner probe (several `nix` starts) and the builders' SSH handshakes are independent: run them at once.
    // Inputs are validated first, with the system Node reports standing in for Nix's until the probe says.
    const probing = phase('runner probe', probeRunner())
    probing.catch(() => undefined)
    const guess = nodeSystem()
    const early = parseSettings(read, { system: guess })
    const runnerVersion = probing.then(found => found.nixVersion)
    // Without a key (`fallback: local`) there is nothing to check: the build stays on the runner.
    const preflighting = early.keyMissing
      ? Promise.resolve(NO_PREFLIGHT)
      : phase('preflight', preflight(early, runnerVersion))
    preflighting.catch(() => undefined)
    // This job's token names everything it writes. The remote-store configuration, whose store check opens the SSH
    // master, starts now too when that strategy may serve the run (speculative.ts).
    const token = newToken()
    const speculation = SpeculativeConfiguration.atStepStart(early, token)
    const facts = await probing
    const parsed = facts.system === guess ? early : withRunnerSystem(early, facts.system)
    describeRunner(facts, parsed)
    for (const notice of parsed.notices) core.notice(notice, { title: 'nix-offload: inputs' })
    const { settings, notice } = settingsForRunner(parsed, facts)
    if (notice !== undefined) core.notice(notice, { title: 'nix-offload: multiplexing off' })
    const checking =
      parsed === early || parsed.keyMissing
        ? preflighting
        : phase('preflight', preflight(parsed, runnerVersion))
    if (settings.keyMissing) {
      await buildOnRunner(
        facts,
        settings,
        `'${Input.SshPrivateKey}' is empty (a workflow run from a fork's pull request gets no secrets)`,
        { preflight: [], stores: [] }
      )
      return
    }
    if (settings.mode === 'canary') await canary(facts, settings, await checking)
    else await offload({ facts, settings, token, speculation }, checking)
  } catch (error) {
    failStep(error)
  }
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
