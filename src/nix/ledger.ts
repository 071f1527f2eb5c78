import {
  ActivityType,
  derivationName,
  isProgressLine,
  LEVEL_INFO,
  LEVEL_WARN,
  type NixEvent,
  parseNixLine,
  ResultType,
  stripAnsi
} from './nix-log.js'
import { StorePathFilter } from './nix-log.js'

export type BuildStatus = 'built' | 'failed' | 'unfinished'

/** Where and when one derivation was built, as proven by Nix's own log. */
export interface BuildRecord {
  drvPath: string
  name: string
  /** The store URI Nix built it on (e.g. ssh-ng://user@alias); empty: built on the runner. */
  machine: string
  /** Epoch milliseconds of the last attempt's start and stop. */
  start: number
  end?: number
  status: BuildStatus
  /** More than 1 when Nix retried, e.g. after a builder failed and it fell back to another machine. */
  attempts: number
  /** A remote build's phases as the build hook logged them (docs/nix.md, "Time per derivation"). */
  phases?: HookPhases
}

/** A span of the log, stamped by the reader; `end` absent while it runs or when the log was cut. */
export interface LogSpan {
  start: number
  end?: number
}

/** A copy phase of the hook's: its span, and the NAR bytes its copies reported (none on Nix 2.8: unknown). */
export interface CopyPhase extends LogSpan {
  bytes?: number
}

export interface HookPhases {
  /** "copying dependencies to 'M'": the inputs the builder lacked, sent to it. */
  upload?: CopyPhase
  /** The builder's own actBuild relayed over ssh-ng: the build proper, without the copies. */
  remote?: LogSpan
  /** "copying outputs from 'M'": the outputs brought back. */
  download?: CopyPhase
  /** Phases that ran while another build on the same machine was at the same step: not this build's alone. */
  shared: HookPhaseKind[]
}

export type HookPhaseKind = 'upload' | 'download'

/** An actBuild activity: the derivation it builds, or whose log lines it relays. */
export interface BuildActivity {
  readonly drvPath: string
  /** The derivation's name, to prefix each of its log lines without working it out again. */
  readonly name: string
  /** The builder's own build activity relayed back over ssh-ng: it carries the log lines but is not a build. */
  readonly relayed: boolean
  /** The machine the derivation is built on (its build's, for a relayed activity): empty for the runner. */
  readonly machine: string
}

/**
 * Which machine built each derivation, from actBuild (105) activities: `fields[0]` is the derivation, `fields[1]` the
 * machine, empty for a local build. Seen on Nix 2.8 with ssh-ng: right after the remote start, the builder's own
 * actBuild arrives relayed with an empty machine for the same derivation; it must not count as a local build.
 */
export class BuildLedger {
  private readonly builds = new Map<string, BuildRecord>()
  private readonly activities = new Map<number, BuildActivity>()
  /** Hook phases running: activity id → the phase it times. */
  private readonly openPhases = new Map<number, { phase: CopyPhase; kind: HookPhaseKind; machine: string }>()
  /** Copies inside an open phase: id → its phase and the bytes it reported so far. */
  private readonly copies = new Map<number, { phase: CopyPhase; bytes: number | undefined }>()

  /** Returns whether the activity is the builder's relayed one rather than a build of its own. */
  startBuild(id: number, drvPath: string, machine: string, time: number): boolean {
    const current = this.builds.get(drvPath)
    const remoteRunning = current !== undefined && current.machine !== '' && current.end === undefined
    const name = current?.name ?? derivationName(drvPath)
    if (machine === '' && remoteRunning) {
      this.activities.set(id, { drvPath, name, relayed: true, machine: current.machine })
      this.phasesOf(current).remote = { start: time }
      return true
    }
    this.activities.set(id, { drvPath, name, relayed: false, machine })
    this.builds.set(drvPath, {
      drvPath,
      name,
      machine,
      start: time,
      status: 'unfinished',
      attempts: (current?.attempts ?? 0) + 1
    })
    return false
  }

  /**
   * A build activity stopped. The builder's own (relayed) one stops when the build there is done; Nix 2.8 stops the
   * runner's own only when the whole `nix build` ends (docs/nix.md, "Proving where a derivation was built"), so
   * whichever stops first ends the build.
   */
  stop(id: number, time: number): void {
    const activity = this.activities.get(id)
    if (activity === undefined) return
    const build = this.builds.get(activity.drvPath)
    if (build === undefined || build.end !== undefined) return
    const remote = build.phases?.remote
    if (activity.relayed && remote !== undefined) remote.end = time
    build.end = time
    if (build.status === 'unfinished') build.status = 'built'
  }

  markFailed(drvPath: string): void {
    const build = this.builds.get(drvPath)
    if (build !== undefined) build.status = 'failed'
  }

  /** The derivation an activity (or a relayed one) belongs to, to name its log lines. */
  derivationOf(id: number): string | undefined {
    return this.activities.get(id)?.drvPath
  }

  /** The actBuild activity (or relayed one) with this id: what names its log lines. */
  activityOf(id: number): BuildActivity | undefined {
    return this.activities.get(id)
  }

  records(): BuildRecord[] {
    return [...this.builds.values()]
  }

  /**
   * A hook phase on `machine` started. It is the build's on that machine that is at that step: uploading (started,
   * not yet building there) or downloading (its build there stopped). With several at the step, the hook's log does not
   * say whose it is (its activities hang off the whole build's, not the derivation's): each of them is marked shared.
   */
  startPhase(id: number, kind: HookPhaseKind, machine: string, time: number): void {
    const candidates = [...this.builds.values()].filter(build => atStep(build, kind, machine))
    if (candidates.length > 1) for (const build of candidates) addShared(this.phasesOf(build), kind)
    const [build] = candidates
    if (build === undefined || candidates.length > 1) return
    const phase: CopyPhase = { start: time, bytes: 0 }
    this.phasesOf(build)[kind] = phase
    this.openPhases.set(id, { phase, kind, machine })
  }

  /** A copy (actCopyPath) started: its bytes count towards the open phase of its direction and builder, if one. */
  startCopy(id: number, from: string, to: string): void {
    const open = [...this.openPhases.values()].filter(({ kind, machine }) =>
      kind === 'upload' ? sameStore(to, machine) : sameStore(from, machine)
    )
    const [only] = open
    if (only !== undefined && open.length === 1) this.copies.set(id, { phase: only.phase, bytes: undefined })
  }

  /** Whether a progress result could be a copy's that a phase counts: only then is it worth parsing. */
  copying(): boolean {
    return this.copies.size > 0
  }

  /** A progress result `[done, expected, …]`; Nix 2.26 may leave out the last one, so the expected size counts. */
  progress(id: number, done: number, expected: number): void {
    const copy = this.copies.get(id)
    if (copy !== undefined) copy.bytes = Math.max(copy.bytes ?? 0, done, expected)
  }

  /** Ends a phase or a copy with this id, if it is one. */
  stopPhase(id: number, time: number): void {
    const copy = this.copies.get(id)
    if (copy !== undefined) {
      this.copies.delete(id)
      const phase = copy.phase
      // Nix 2.8 reports no progress on copies: one copy without bytes leaves its phase's bytes unknown.
      phase.bytes =
        copy.bytes === undefined || phase.bytes === undefined ? undefined : phase.bytes + copy.bytes
    }
    const open = this.openPhases.get(id)
    if (open === undefined) return
    open.phase.end = time
    this.openPhases.delete(id)
  }

  private phasesOf(build: BuildRecord): HookPhases {
    build.phases ??= { shared: [] }
    return build.phases
  }
}

/** Whether `build` is on `machine` and at the step a new `kind` phase belongs to. */
function atStep(build: BuildRecord, kind: HookPhaseKind, machine: string): boolean {
  if (build.machine === '' || !sameStore(machine, build.machine) || build.phases?.[kind] !== undefined)
    return false
  if (kind === 'upload') return build.phases?.remote === undefined && build.end === undefined
  // Without a relayed build (ssh://) nothing marks the build there done: any build past its upload may be downloading.
  return (
    build.end !== undefined || (build.phases?.remote === undefined && build.phases?.upload?.end !== undefined)
  )
}

function addShared(phases: HookPhases, kind: HookPhaseKind): void {
  if (!phases.shared.includes(kind)) phases.shared.push(kind)
}

/** Whether a store the log names is `machine`: Nix 2.26 names a copy's SSH end only by its scheme, "ssh-ng://". */
function sameStore(logged: string, machine: string): boolean {
  return logged === machine || (logged.endsWith('://') && machine.startsWith(logged))
}

/** The hook's own activities (build-remote.cc; type 0, so known by their text) that time a remote build's copies. */
const HOOK_PHASE = /^(copying dependencies to|copying outputs from) '([^']+)'$/

/** The phase an untyped activity's text names, and its machine. */
export function hookPhase(text: string): { kind: HookPhaseKind; machine: string } | undefined {
  const match = HOOK_PHASE.exec(text)
  if (match === null) return undefined
  return { kind: match[1] === 'copying dependencies to' ? 'upload' : 'download', machine: match[2] ?? '' }
}

/**
 * The builds in a log that `machine`'s own Nix wrote: there an actBuild with an empty machine name is a build local to
 * that machine's store, not to the runner. One that names a machine was handed on by that Nix's own build hook.
 */
export function builtOn(machine: string, builds: readonly BuildRecord[]): BuildRecord[] {
  return builds.map(record => (record.machine === '' ? { ...record, machine } : record))
}

/** One store path copied between stores (actCopyPath, 100: fields path, from, to), as the log timed it. */
export interface CopyRecord {
  path: string
  from: string
  to: string
  start: number
  end?: number
}

/** Copies to and from builders, for the canary's transfer figures. */
export class CopyLedger {
  private readonly copies = new Map<number, CopyRecord>()

  startCopy(id: number, path: string, from: string, to: string, time: number): void {
    this.copies.set(id, { path, from, to, start: time })
  }

  stop(id: number, time: number): void {
    const copy = this.copies.get(id)
    if (copy !== undefined && copy.end === undefined) copy.end = time
  }

  records(): CopyRecord[] {
    return [...this.copies.values()]
  }
}

/**
 * Where the log reader sends what a user should see: the step's log in the action, nothing in the benchmark. A
 * derivation's own log line comes with the machine it is built on (empty for the runner), for its tag.
 */
export type LogPrinter = (line: string, machine?: string) => void

/** Something else that follows the log as the reader reads it: the live progress (progress.ts). */
export interface LogObserver {
  /** Every event the reader parsed, after the reader has read it. */
  event(event: NixEvent): void
  /** A progress or set-expected result line, which the reader skips unparsed (isProgressLine). */
  progressLine(line: string): void
}

const KEPT_LOG_LINES = 10

/**
 * Reads `nix build --log-format internal-json` stderr, one line at a time: keeps the build and copy ledgers, Nix's
 * error and warning messages and each derivation's last log lines, and prints each derivation's log as `name> line`,
 * with the machine it is built on for the printer's tag.
 */
export class NixLogReader {
  readonly ledger = new BuildLedger()
  readonly copyLedger = new CopyLedger()
  /** Nix's error and warning messages, without colours: what the diagnosis reads. */
  readonly messages: string[] = []
  /** The last log lines of each derivation, to show with a failure. */
  readonly lastLines = new Map<string, string[]>()

  /**
   * `paths` checks each path the log names before the ledgers keep it: the log is relayed from the builder, and the
   * ledgers' paths reach command lines (the proof, the sizes).
   */
  constructor(
    private readonly print: LogPrinter,
    private readonly clock: () => number = Date.now,
    private readonly observer?: LogObserver,
    readonly paths = new StorePathFilter()
  ) {}

  readLine(line: string): void {
    // Most of a big log: skipped before any parsing.
    if (isProgressLine(line)) {
      this.observer?.progressLine(line)
      if (this.ledger.copying()) this.copyProgress(line)
      return
    }
    const event = parseNixLine(line)
    if (event === undefined) {
      if (line.trim() !== '') this.print(line)
      return
    }
    this.observer?.event(event)
    switch (event.action) {
      case 'start': {
        const now = this.clock()
        let relayed = false
        if (event.type === ActivityType.Build) {
          const [drvPath, machine] = event.fields
          if (typeof drvPath === 'string' && this.paths.admit(drvPath)) {
            relayed = this.ledger.startBuild(event.id, drvPath, String(machine ?? ''), now)
          }
        }
        if (event.type === ActivityType.CopyPath) {
          const [path, from, to] = event.fields
          if (typeof path === 'string' && this.paths.admit(path))
            this.copyLedger.startCopy(event.id, path, String(from ?? ''), String(to ?? ''), now)
          this.ledger.startCopy(event.id, String(from ?? ''), String(to ?? ''))
        }
        const phase = event.type === ActivityType.Unknown ? hookPhase(event.text) : undefined
        if (phase !== undefined) this.ledger.startPhase(event.id, phase.kind, phase.machine, now)
        if (!relayed && event.level <= LEVEL_INFO && event.text !== '') this.print(event.text)
        return
      }
      case 'stop': {
        const now = this.clock()
        this.ledger.stop(event.id, now)
        this.ledger.stopPhase(event.id, now)
        this.copyLedger.stop(event.id, now)
        return
      }
      case 'result':
        if (event.type === ResultType.BuildLogLine || event.type === ResultType.PostBuildLogLine) {
          const activity = this.ledger.activityOf(event.id)
          const text = String(event.fields[0] ?? '')
          if (activity === undefined) {
            this.print(text)
          } else {
            this.print(`${activity.name}> ${text}`, activity.machine)
            this.keepLine(activity.drvPath, text)
          }
        }
        return
      case 'msg':
        if (event.level <= LEVEL_INFO) this.print(event.msg)
        // Warnings too: without a daemon, the build hook reports "Failed to find a machine" as one.
        if (event.level <= LEVEL_WARN) {
          const plain = stripAnsi(event.msg)
          this.messages.push(plain)
          if (event.level === 0)
            for (const drvPath of this.paths.keep(failedDerivations(plain))) this.ledger.markFailed(drvPath)
        }
        return
    }
  }

  private copyProgress(line: string): void {
    const event = parseNixLine(line)
    if (event?.action !== 'result' || event.type !== ResultType.Progress) return
    const [done, expected] = event.fields
    this.ledger.progress(event.id, Number(done ?? 0), Number(expected ?? 0))
  }

  private keepLine(drvPath: string, line: string): void {
    const lines = this.lastLines.get(drvPath)
    if (lines === undefined) {
      this.lastLines.set(drvPath, [line])
      return
    }
    lines.push(line)
    if (lines.length > KEPT_LOG_LINES) lines.shift()
  }
}

/**
 * Derivations an error message says failed: "builder for '…' failed", "build of '…' on '…' failed" (Nix ≤ 2.29),
 * "Cannot build '…'." followed by a "Reason:" line (2.30+).
 */
export function failedDerivations(message: string): string[] {
  const pattern =
    /(?:builder for '(\/[^']+\.drv)'|build of '(\/[^']+\.drv)'(?: on '[^']*')?) failed|Cannot build '(\/[^']+\.drv)'/g
  const paths = [...message.matchAll(pattern)].map(match => match[1] ?? match[2] ?? match[3] ?? '')
  return [...new Set(paths)]
}
