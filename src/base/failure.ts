import * as core from '@actions/core'
import { endGroup, logError, logInfo } from './step-log.js'

/**
 * How a step fails: with exactly one error annotation per error. `core.setFailed` is not used, because it writes an
 * untitled annotation of its own, which GitHub shows beside the titled one that said the same thing.
 */

/** An error that fails the step, annotated under its title (e.g. `nix-offload: input port`). */
export class StepError extends Error {
  constructor(
    message: string,
    readonly title: string
  ) {
    super(message)
    this.name = 'StepError'
  }
}

/**
 * A failure whose errors were each annotated where they were found (one per builder, one per derivation): failing the
 * step writes nothing more. Its message sums them up for code that reads it (the reason given for `fallback: local`).
 */
export class AnnotatedFailure extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'AnnotatedFailure'
  }
}

/** The title of an error the action did not expect: a bug, or a failure nothing else names. */
const UNEXPECTED_TITLE = 'nix-offload'

/**
 * Fails the step for `error`: its one annotation, unless it was written already, and the failing exit code. An error
 * the action did not expect (a bug) also has its stack in the log, for the report of it. Both come after the last
 * phase's group has ended.
 */
export function failStep(error: unknown): void {
  process.exitCode = core.ExitCode.Failure
  endGroup()
  if (error instanceof AnnotatedFailure) return
  if (error instanceof StepError) {
    logError(error.message, { title: error.title })
    return
  }
  if (error instanceof Error && error.stack !== undefined) logInfo(error.stack)
  logError(error instanceof Error ? error.message : String(error), { title: UNEXPECTED_TITLE })
}
