import { labelOf } from './diagnosis-messages.js'
import { RULES } from './diagnosis-rules.js'
import type {
  BuilderOffer,
  Cause,
  Diagnosis,
  DiagnosisContext,
  Finding,
  OfferedBuilder
} from './diagnosis-types.js'
import { label } from '../inputs/index.js'

export type {
  BuilderOffer,
  Cause,
  Diagnosis,
  DiagnosisContext,
  Finding,
  OfferedBuilder,
  Rule
} from './diagnosis-types.js'

/**
 * Turns Nix's remote-build failure messages (level-0 `msg` texts, ANSI already stripped, see docs/nix.md, "Failure
 * wordings") into causes and fixes. The wordings are data: `RULES` holds one row per wording and the Nix/Lix versions
 * that print it, so supporting a new wording is adding a row.
 */

export function builderOffer(builder: OfferedBuilder): BuilderOffer {
  return {
    storeUri: builder.storeUri,
    label: label(builder),
    systems: builder.systems,
    supportedFeatures: builder.supportedFeatures,
    mandatoryFeatures: builder.mandatoryFeatures,
    origin: builder.origin,
    pinInput: builder.pinInput
  }
}

/**
 * Errors a connection lost mid-way shows; the ssh error itself goes to the nix-daemon's log (docs/nix.md, "Failure
 * wordings").
 */
export function diagnose(messages: readonly string[], context: DiagnosisContext): Diagnosis[] {
  const found: Finding[] = []
  messages.forEach((message, index) => {
    for (const rule of RULES) {
      const match = rule.pattern.exec(message)
      if (match === null) continue
      const diagnoses = rule.explain(match, context, messages.slice(index + 1), messages.slice(0, index))
      if (diagnoses.length === 0) continue
      found.push(...diagnoses)
      break
    }
  })
  let reconciled = deduplicate(withFullPaths(found, messages))
  // Before dropExplained: a `Failed to find a machine` that a skipped builder explains still means no fallback.
  reconciled = withFallback(reconciled, context)
  reconciled = mergeSlotIntoMatch(dropExplained(reconciled))
  return orderDiagnoses(reconciled.map(toDiagnosis))
}

const ORDER: readonly Cause[] = [
  'unsigned-from-builder-store',
  'copy-back-failed',
  'builder-store-full',
  'builder-user-untrusted',
  'connection-dropped',
  'build-failed-on-builder',
  'builder-unreachable',
  'no-matching-builder',
  'no-local-slot',
  'untrusted-settings-ignored',
  'local-fallback'
]

/** Errors before warnings; then what names a failed derivation, then its builder, then the consequences. */
export function orderDiagnoses(diagnoses: readonly Diagnosis[]): Diagnosis[] {
  const rank = (d: Diagnosis): number => (d.severity === 'error' ? 0 : 100) + ORDER.indexOf(d.cause)
  return [...diagnoses].sort((a, b) => rank(a) - rank(b))
}

function withFullPaths(found: Finding[], messages: readonly string[]): Finding[] {
  const full = new Map<string, string>()
  for (const path of messages.join('\n').match(/\/[^\s']+\.drv/g) ?? []) full.set(baseName(path), path)
  return found.map(d =>
    d.drvPath === undefined ? d : { ...d, drvPath: full.get(baseName(d.drvPath)) ?? d.drvPath }
  )
}

function deduplicate(found: Finding[]): Finding[] {
  const seen = new Set<string>()
  return found.filter(d => {
    const key = [d.cause, baseName(d.drvPath ?? ''), d.machine ?? ''].join('\0')
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/** A builder that offers what was needed but was reported unreachable already explains the missing builder. */
function dropExplained(found: Finding[]): Finding[] {
  const unreachable = new Set(found.filter(d => d.cause === 'builder-unreachable').map(d => d.machine))
  return found.filter(
    d => d.usableBy === undefined || d.usableBy.length === 0 || !d.usableBy.every(uri => unreachable.has(uri))
  )
}

/** `no-local-slot` only restates a missing builder; keep its one fact on the more specific diagnosis. */
function mergeSlotIntoMatch(found: Finding[]): Finding[] {
  if (!found.some(d => d.cause === 'no-matching-builder')) return found
  const slot = found.some(d => d.cause === 'no-local-slot')
  return found
    .filter(d => d.cause !== 'no-local-slot')
    .map(d =>
      d.cause === 'no-matching-builder' && slot
        ? {
            ...d,
            message: `${d.message}\n--max-jobs 0 (\`local-jobs\`) also keeps Nix from building it on the runner.`
          }
        : d
    )
}

/** A skipped builder without a fatal "no builder" error means Nix built its work elsewhere, maybe on the runner. */
function withFallback(found: Finding[], context: DiagnosisContext): Finding[] {
  if (found.some(d => d.cause === 'no-local-slot' || d.cause === 'no-matching-builder')) return found
  const fallbacks = found
    .filter(d => d.cause === 'builder-unreachable')
    .map((d): Finding => {
      const label = labelOf(d.machine ?? '', context)
      return {
        cause: 'local-fallback',
        severity: 'warning',
        title: `Skipped builder ${label}`,
        message:
          `Nix skipped builder ${label} and built its derivations on another builder or on the runner.\n` +
          'Fix the builder (see its error); with `local-jobs: 0` (the default) the build fails instead.',
        machine: d.machine
      }
    })
  return [...found, ...fallbacks]
}

/** Nix's multi-line message as one line, without its nested `error:` prefixes. */

function toDiagnosis(finding: Finding): Diagnosis {
  const { cause, severity, title, message, machine, drvPath } = finding
  const diagnosis: Diagnosis = { cause, severity, title, message }
  if (machine !== undefined) diagnosis.machine = machine
  if (drvPath !== undefined) diagnosis.drvPath = drvPath
  return diagnosis
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}
