import * as core from '@actions/core'
import { randomBytes } from 'node:crypto'
import { safeLine, safeText } from './safe-text.js'

/**
 * The step's log, folded: each phase's lines in a group of its own, the groups one after the other, since GitHub
 * does not nest them. A group opens with its phase's first line, so a phase that prints nothing leaves no empty fold.
 * Annotations stay outside every group, so that a folded log still shows them: one ends the open group, and the
 * phase's next line opens it again, marked continued. While a build's log is relayed, workflow commands are stopped
 * (stopCommands), and a group or an annotation printed then would be read as text: it waits for the resume. Everything
 * the action prints goes through here.
 */

/** The phases of a step, each a group of that title; a title may name a builder (`Build on nixbuilder@b1:22`). */
export enum Phase {
  Preflight = 'Preflight',
  Configure = 'Configure',
  Build = 'Build',
  CopyBack = 'Copy back',
  Push = 'Push',
  Proof = 'Proof',
  Verdict = 'Verdict',
  Undo = 'Undo'
}

/** What a group opened again after an annotation adds to its title. */
export const CONTINUED = ' (continued)'

export type AnnotationKind = 'error' | 'warning' | 'notice'

/** The folded log of one step (one process): what group is open, and whether commands are stopped. */
export class StepLog {
  /** The phase printing now; its group opens with its next line. */
  private title: string | undefined
  private open = false
  /** An annotation ended the phase's group: it opens again as continued. */
  private interrupted = false
  /** While a build's log is relayed: the resume token, and how many relays share it. */
  private relay: { token: string; count: number } | undefined
  /** Group changes and annotations that came while commands were stopped. */
  private readonly held: (() => void)[] = []

  /** The phase from now on, ending the one before: its lines go into a group of `title`. */
  begin(title: string): void {
    this.whenCommandsRun(() => {
      this.close()
      this.title = safeLine(title)
      this.interrupted = false
    })
  }

  /** The end of the phase: its group, if open, ends, and later lines are in none. */
  end(): void {
    this.whenCommandsRun(() => {
      this.close()
      this.title = undefined
    })
  }

  /** One phase, whose group ends whether `work` succeeds or throws. */
  async within<T>(title: string, work: () => Promise<T>): Promise<T> {
    this.begin(title)
    try {
      return await work()
    } finally {
      this.end()
    }
  }

  /** A line that is safe to print as it is (the relayed log, or text made safe), in the phase's group. */
  line(text: string): void {
    if (this.relay === undefined && this.title !== undefined && !this.open) {
      core.startGroup(this.interrupted ? `${this.title}${CONTINUED}` : this.title)
      this.open = true
    }
    core.info(text)
  }

  /** An annotation, outside every group. */
  annotate(kind: AnnotationKind, message: string, properties?: core.AnnotationProperties): void {
    this.whenCommandsRun(() => {
      this.interrupt()
      if (kind === 'error') core.error(message, properties)
      else if (kind === 'warning') core.warning(message, properties)
      else core.notice(message, properties)
    })
  }

  /** The job summary, written once the open group ended. */
  async summary(markdown: string): Promise<void> {
    this.whenCommandsRun(() => this.interrupt())
    await core.summary.addRaw(markdown).write()
  }

  /** A debug line (shown with ACTIONS_STEP_DEBUG), a workflow command too. */
  debug(text: string): void {
    this.whenCommandsRun(() => core.debug(text))
  }

  /**
   * Stops workflow commands, for a log from outside (a builder's build log may hold `::add-mask::` or `::error::`):
   * the phase's group opens first, as nothing can open it until the returned function resumes them.
   */
  stopCommands(): () => void {
    if (this.relay === undefined) {
      const token = randomBytes(16).toString('hex')
      this.line(`::stop-commands::${token}`)
      this.relay = { token, count: 1 }
    } else {
      this.relay.count += 1
    }
    let resumed = false
    return () => {
      const relay = this.relay
      if (resumed || relay === undefined) return
      resumed = true
      relay.count -= 1
      if (relay.count > 0) return
      core.info(`::${relay.token}::`)
      this.relay = undefined
      for (const held of this.held.splice(0)) held()
    }
  }

  private whenCommandsRun(command: () => void): void {
    if (this.relay === undefined) command()
    else this.held.push(command)
  }

  private interrupt(): void {
    if (!this.open) return
    this.close()
    this.interrupted = true
  }

  private close(): void {
    if (!this.open) return
    core.endGroup()
    this.open = false
  }
}

/** The step's own log: the one StepLog of this process. */
const stepLog = new StepLog()

/** From now on the lines go into `title`'s group; the group before ends. */
export function startGroup(title: string): void {
  stepLog.begin(title)
}

/** Ends the phase's group: later lines are in none. */
export function endGroup(): void {
  stepLog.end()
}

/** One phase in a group of its own, which ends even when the phase throws. */
export function inGroup<T>(title: string, work: () => Promise<T>): Promise<T> {
  return stepLog.within(title, work)
}

/** A line that is safe as it is: a relayed build log line, or one made by safeLine or safeText. */
export function logLine(line: string): void {
  stepLog.line(line)
}

/** Text that may hold text from outside (a builder, the evaluation, Nix's log, saved state), made safe to print. */
export function logInfo(text: string): void {
  stepLog.line(safeText(text))
}

/** An error annotation, outside every group (`core.error` escapes its message). */
export function logError(message: string, properties?: core.AnnotationProperties): void {
  stepLog.annotate('error', message, properties)
}

/** A warning annotation, outside every group. */
export function logWarning(message: string, properties?: core.AnnotationProperties): void {
  stepLog.annotate('warning', message, properties)
}

/** A notice annotation, outside every group. */
export function logNotice(message: string, properties?: core.AnnotationProperties): void {
  stepLog.annotate('notice', message, properties)
}

/** A debug line, for a phase's timing. */
export function logDebug(text: string): void {
  stepLog.debug(text)
}

/** Writes the job summary, once the open group ended. */
export function writeSummary(markdown: string): Promise<void> {
  return stepLog.summary(markdown)
}

/** Stops workflow commands while a log from outside is relayed; call what it returns to resume them. */
export function stopCommands(): () => void {
  return stepLog.stopCommands()
}
