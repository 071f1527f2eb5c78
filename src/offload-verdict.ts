import type { Built } from './offload-build.js'
import type { OffloadStep } from './offload-setup.js'
import { AnnotatedFailure, logError, logInfo, logWarning, phase, StepError } from './base/index.js'
import { checkAgain, secondLook } from './builders/index.js'
import { Input, type Settings } from './inputs/index.js'
import { lastError } from './nix/index.js'
import { builderOffer, diagnose, type Diagnosis, orderDiagnoses } from './diagnosis/index.js'
import type { BuildReport } from './report/index.js'
import type { Plan } from './runner/index.js'

/** What of the step the verdict reads. */
type Judged = Pick<OffloadStep, 'facts' | 'settings'>

/**
 * The build's verdict: why it failed (the diagnosis, revised by a second look at a builder Nix lost), each other
 * finding as an annotation, and whether every derivation is proven to have run on a builder.
 */
export async function judgeBuild(options: {
  step: Judged
  built: Built
  report: BuildReport
  plan: Plan
}): Promise<void> {
  const { built, report } = options
  const diagnoses = await diagnoseBuild(options)
  // Each finding is one annotation; the first error among them is why the step fails, and is not written again.
  for (const diagnosis of diagnoses) {
    const annotate = diagnosis.severity === 'error' ? logError : logWarning
    annotate(diagnosis.message, { title: `nix-offload: ${diagnosis.title}` })
  }
  if (built.exitCode !== 0) {
    const cause = diagnoses.find(diagnosis => diagnosis.severity === 'error')
    if (cause !== undefined) throw new AnnotatedFailure(cause.message)
    throw new StepError(
      `nix build failed (exit code ${built.exitCode}): ${lastError(built)}`,
      'nix-offload: build failed'
    )
  }
  if (report.derivations.length === 0) {
    logWarning(
      'Nothing was built: every output was already valid, so this run does not prove that builds run on the builder. ' +
        'Build a derivation whose outputs exist nowhere yet (e.g. a nonce in an attribute) for a proof.',
      { title: 'nix-offload: nothing built' }
    )
  }
  judgeStoreProofs(report, options.step.settings)
  judgeLocalBuilds(report, options.step.settings)
}

/** What Nix's messages say went wrong, with each builder Nix could not reach checked again. */
async function diagnoseBuild(options: { step: Judged; built: Built; plan: Plan }): Promise<Diagnosis[]> {
  const { step, built, plan } = options
  const machines = new Map(built.builds.map(build => [build.drvPath, build.machine]))
  const found = orderDiagnoses(
    diagnose(built.messages, {
      builders: plan.builders.map(builderOffer),
      lastLogLines: drvPath => built.lastLines.get(drvPath) ?? [],
      runnerUser: step.facts.userName,
      machineOf: drvPath => machines.get(drvPath),
      lastRemoteBuild: () => {
        const remote = built.builds.filter(build => build.machine !== '').sort((x, y) => y.start - x.start)[0]
        return remote === undefined ? undefined : { drvPath: remote.drvPath, machine: remote.machine }
      },
      copiedTo: path => built.copies.filter(copy => copy.path === path && copy.to !== 'local').at(-1)?.to,
      ...(plan.path === 'remote-store' && plan.builders.length === 1
        ? { buildStore: plan.builders[0]?.storeUri }
        : {})
    })
  )
  return phase(
    'second look',
    secondLook(found, plan.builders, {
      check: builder => checkAgain(builder, step.settings, step.facts.nixVersion),
      info: logInfo
    })
  )
}

/** A derivation whose builder's store disagrees with Nix's log: an error under `require-remote`, else a warning. */
function judgeStoreProofs(report: BuildReport, settings: Settings): void {
  const unproven = report.derivations.filter(derivation => derivation.proof?.store === false)
  const annotate = settings.requireRemote ? logError : logWarning
  const consequence = settings.requireRemote ? `\n'${Input.RequireRemote}' is true, so the step fails.` : ''
  for (const derivation of unproven) {
    annotate(
      `${derivation.drvPath}: Nix's log shows it built in the builder's store, but that store disagrees: ` +
        `${derivation.proof?.problem ?? 'no proof'}.${consequence}`,
      { title: 'nix-offload: proof' }
    )
  }
  if (settings.requireRemote && unproven.length > 0) {
    throw new AnnotatedFailure(
      `${unproven.length} derivation(s) have no proof from the builder's store although '${Input.RequireRemote}' is ` +
        `true: ${unproven.map(derivation => derivation.name).join(', ')}.`
    )
  }
}

/** A derivation built on the runner: an error under `require-remote`, else a warning. */
function judgeLocalBuilds(report: BuildReport, settings: Settings): void {
  const local = report.derivations.filter(derivation => derivation.machine === 'local')
  if (local.length === 0) return
  const names = local.map(derivation => derivation.name).join(', ')
  // A failover that left no builder handed the rest to the runner, as `fallback: local` asks; it has said so.
  const fellBack = (report.failovers ?? []).some(failover => failover.movedTo.includes('local'))
  if (!settings.requireRemote || (fellBack && settings.fallback === 'local')) {
    logWarning(`${local.length} derivation(s) were built on the runner, not on a builder: ${names}.`, {
      title: 'nix-offload: local fallback'
    })
    return
  }
  for (const derivation of local) {
    logError(
      `${derivation.drvPath} was built on the runner, not on a builder, although '${Input.RequireRemote}' is ` +
        `true. Check that a builder offers its system and features, or set '${Input.LocalJobs}: 0' so nothing ` +
        'can build locally.',
      { title: 'nix-offload: local build' }
    )
  }
  throw new AnnotatedFailure(
    `${local.length} derivation(s) were built on the runner although '${Input.RequireRemote}' is true: ${names}.`
  )
}
