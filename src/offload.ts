import { buildBuilt, reportBuild, reportConfigureOnly, sayUndone, undoStorePlan } from './offload-build.js'
import { admit, choose, configure, type OffloadStep, startEarly } from './offload-setup.js'
import { judgeBuild } from './offload-verdict.js'
import { inGroup, Phase } from './base/index.js'
import type { PreflightOutcome } from './builders/index.js'
import { wantsBuild } from './inputs/index.js'
import { refusePush } from './store-push.js'

/**
 * Build mode: start early, admit the builders, choose a strategy, configure the runner, build, prove and report where
 * each derivation ran, undo what the build no longer needs, and judge the build. Each phase's lines are a group of the
 * log; the preflight's group, opened by run.ts, ends with the builders' admission.
 *
 * When the configuration does not depend on the preflight (no `auto` value, no `skip-unhealthy`) and needs no
 * daemon restart, the runner is configured, and the masters opened, while the preflight still runs: the two SSH
 * handshakes overlap instead of adding up (speculative.ts).
 */
export async function offload(step: OffloadStep, checking: Promise<PreflightOutcome>): Promise<void> {
  const early = await startEarly(step)
  const admitted = await admit({ step, checking })
  if (admitted === undefined) return
  const { choice, configured } = await inGroup(Phase.Configure, async () => {
    const choice = await choose({ step, early, builders: admitted.builders })
    refusePush(step.settings, choice)
    return { choice, configured: await configure({ step, choice, ...admitted }) }
  })
  const { plan } = configured
  if (!wantsBuild(step.settings)) return reportConfigureOnly({ step, plan, checks: admitted.checks })
  const built = await inGroup(Phase.Build, () => buildBuilt({ step, choice, plan }))
  const undoing = undoStorePlan(configured)
  const report = await inGroup(Phase.Proof, () =>
    reportBuild({ step, choice, built, plan, checks: admitted.checks })
  )
  await sayUndone(undoing)
  await inGroup(Phase.Verdict, () => judgeBuild({ step, built, report, plan }))
}
