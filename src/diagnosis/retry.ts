import type { Cause, Diagnosis, DiagnosisContext } from './diagnosis-types.js'
import type { BuildOutcome } from '../nix/index.js'

/**
 * Which failures another attempt may cure. A lost connection or a builder that stopped answering says nothing about
 * the derivation, so its unfinished work may go again, on that builder once it answers or on another one; a builder
 * script that failed, a missing builder, trust or a full store fail the same way every time.
 */
export const TRANSIENT: Readonly<Record<Cause, boolean>> = {
  'builder-unreachable': true,
  'connection-dropped': true,
  'no-matching-builder': false,
  'untrusted-settings-ignored': false,
  'build-failed-on-builder': false,
  'local-fallback': false,
  'no-local-slot': false,
  'builder-user-untrusted': false,
  'unsigned-from-builder-store': false,
  'copy-back-failed': false,
  'builder-store-full': false
}

/** What to do after a failed attempt: build again (with the builders it names as lost), or stop. */
export type RetryDecision =
  { retry: true; lost: string[] } | { retry: false; why: 'no-error' | 'not-transient' | 'no-retries-left' }

/**
 * A failed attempt is tried again only if every error it shows is transient and `retries` allows another attempt;
 * `lost` holds the store URIs those errors name. A failure no rule explains is not retried: it may be the build's own.
 */
export function retryDecision(options: {
  diagnoses: readonly Diagnosis[]
  /** Attempts made so far, the first one included. */
  attempts: number
  retries: number
}): RetryDecision {
  const errors = options.diagnoses.filter(diagnosis => diagnosis.severity === 'error')
  if (errors.length === 0) return { retry: false, why: 'no-error' }
  if (!errors.every(diagnosis => TRANSIENT[diagnosis.cause])) return { retry: false, why: 'not-transient' }
  if (options.attempts > options.retries) return { retry: false, why: 'no-retries-left' }
  const lost = new Set(
    errors.flatMap(diagnosis => (diagnosis.machine === undefined ? [] : [diagnosis.machine]))
  )
  return { retry: true, lost: [...lost] }
}

/** What the diagnosis reads of one build's outcome: where each derivation ran, the last remote build, the copies. */
export function outcomeContext(
  outcome: Pick<BuildOutcome, 'builds' | 'lastLines' | 'copies'>,
  base: Pick<DiagnosisContext, 'builders' | 'runnerUser' | 'buildStore'>
): DiagnosisContext {
  const machines = new Map(outcome.builds.map(build => [build.drvPath, build.machine]))
  const context: DiagnosisContext = {
    builders: base.builders,
    runnerUser: base.runnerUser,
    lastLogLines: drvPath => outcome.lastLines.get(drvPath) ?? [],
    machineOf: drvPath => machines.get(drvPath),
    lastRemoteBuild: () => {
      const remote = outcome.builds.filter(build => build.machine !== '').sort((x, y) => y.start - x.start)[0]
      return remote === undefined ? undefined : { drvPath: remote.drvPath, machine: remote.machine }
    },
    copiedTo: path => outcome.copies.filter(copy => copy.path === path && copy.to !== 'local').at(-1)?.to
  }
  if (base.buildStore !== undefined) context.buildStore = base.buildStore
  return context
}
