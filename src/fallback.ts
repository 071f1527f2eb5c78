import { cpus } from 'node:os'
import { inGroup, logWarning, Phase, phase, StepError } from './base/index.js'
import { Input, type Settings } from './inputs/index.js'
import { lastError, runBuild } from './nix/index.js'
import { publish } from './publish.js'
import { type Checks, makeReport } from './report/index.js'
import type { RunnerFacts } from './runner/index.js'

/**
 * `fallback: local`: no builder can be used (no key, as for a pull request from a fork, or every builder failed its
 * preflight), so the build runs on the runner, as a plain `nix build` would. Nothing is configured or offloaded;
 * `require-remote` does not apply, and `confirmed` stays false.
 */
export async function buildOnRunner(
  facts: RunnerFacts,
  settings: Settings,
  reason: string,
  checks: Checks
): Promise<void> {
  logWarning(
    `Building on the runner: ${reason}. '${Input.Fallback}: local' is set, so nothing is offloaded and ` +
      `'${Input.RequireRemote}' does not apply.`,
    { title: 'nix-offload: fallback to the runner' }
  )
  const report = makeReport({ builds: [], outPaths: [], checks: { ...checks, runner: runnerEntry(facts) } })
  if (settings.installables.length === 0 && settings.args.length === 0) {
    await publish({ ...report, fallback: reason }, settings, false)
    return
  }
  const local = { ...settings, localJobs: Math.max(1, cpus().length), rebuild: settings.rebuild }
  const outcome = await inGroup(Phase.Build, () => phase('build', runBuild(local, process.env)))
  const built = makeReport({
    builds: outcome.builds,
    outPaths: outcome.outPaths,
    checks,
    outputsOnBuilder: false,
    succeeded: outcome.exitCode === 0
  })
  await publish({ ...built, runner: runnerEntry(facts), fallback: reason }, settings, true)
  if (outcome.exitCode !== 0) {
    throw new StepError(
      `nix build failed on the runner (exit code ${outcome.exitCode}): ${lastError(outcome)}`,
      'nix-offload: build failed'
    )
  }
}

/** The runner's side of the checks, as the report shows it. */
export function runnerEntry(facts: RunnerFacts): NonNullable<Checks['runner']> {
  return {
    nixVersion: facts.nixVersion,
    system: facts.system,
    store: facts.store,
    user: facts.userName,
    trusted: facts.trusted
  }
}
