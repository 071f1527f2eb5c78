import type { Builder } from '../inputs/index.js'
import type { MachineOffer } from '../nix/index.js'

/**
 * The vocabulary of a diagnosis: the causes, what a builder offers, what the rules get to look at, and the shape of a
 * rule. diagnosis.ts applies the rules (diagnosis-rules.ts) and reconciles what they find.
 */

export type Cause =
  | 'no-matching-builder'
  | 'builder-unreachable'
  | 'connection-dropped'
  | 'untrusted-settings-ignored'
  | 'build-failed-on-builder'
  | 'local-fallback'
  | 'no-local-slot'
  | 'builder-user-untrusted'
  | 'unsigned-from-builder-store'
  | 'copy-back-failed'
  | 'builder-store-full'

export interface Diagnosis {
  cause: Cause
  severity: 'error' | 'warning'
  /** Short, for the annotation title. */
  title: string
  /** First line: the cause and, where known, the builder; then the fix. */
  message: string
  /** The builder's store URI, when the cause concerns one builder. */
  machine?: string
  drvPath?: string
}

/** What one configured builder offers, as Nix compares it with a derivation's needs. */
export interface BuilderOffer extends MachineOffer {
  storeUri: string
  /** How the user knows it, e.g. nixbuilder@10.0.0.5:22 */
  label: string
  /** Which input described it (e.g. `input 'host'`), to say where to fix it. */
  origin?: string
  /** The input that pins its host key (`host-public-key` or `known-hosts`). */
  pinInput?: string
}

export interface DiagnosisContext {
  builders: BuilderOffer[]
  /** The derivation's last build-log lines, oldest first; empty when unknown. */
  lastLogLines: (drvPath: string) => string[]
  /** The user the action runs `nix` as: the one `trusted-users` must name. */
  runnerUser: string
  /** Where the log showed the derivation start: a store URI, '' for the runner, undefined if it never started. */
  machineOf?: (drvPath: string) => string | undefined
  /** The remote build the log started last: the likely victim of an error that names no derivation. */
  lastRemoteBuild?: () => { drvPath: string; machine: string } | undefined
  /** The builder (store URI) the log last showed a store path being copied to, if any. */
  copiedTo?: (storePath: string) => string | undefined
  /** The store URI the build ran in, with the remote-store strategy; undefined with Nix's build hook. */
  buildStore?: string
}

/** A diagnosis while rules run, with what the later steps need to reconcile it with the others. */
export interface Finding extends Diagnosis {
  /** no-matching-builder: the configured builders that do offer what the derivation needs (so one was unusable). */
  usableBy?: string[]
}

/** One wording of one failure. */
export interface Rule {
  cause: Cause
  /** Which Nix/Lix versions print this wording. */
  versions: string
  pattern: RegExp
  /**
   * Explains a match. `later` holds the messages Nix printed after this one (to find the derivation a bare error was
   * about), `earlier` those before it (to tell what Nix had tried by then). An empty result means the text is not this
   * cause after all, and the next rule is tried.
   */
  explain: (
    match: RegExpMatchArray,
    context: DiagnosisContext,
    later: readonly string[],
    earlier: readonly string[]
  ) => Finding[]
}

/** The fields of a configured builder a diagnosis uses. */
export type OfferedBuilder = { storeUri: string } & Pick<
  Builder,
  'user' | 'host' | 'port' | 'systems' | 'supportedFeatures' | 'mandatoryFeatures' | 'origin' | 'pinInput'
>
