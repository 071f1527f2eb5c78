import { BuildLedger, type BuildRecord, failedDerivations, type LogObserver } from './ledger.js'
import { ActivityType, type NixEvent, ResultType, stripAnsi } from './nix-log.js'

/**
 * Live progress on a long build: at most every PROGRESS_INTERVAL_MS, and only when something changed, one line such
 * as `progress: 37/212 derivations built (b1: 4 running, b2: 2 running), 1.2 GiB copied`, from the same internal-json
 * stream the ledger reads. Pure: it is fed the log's events and asked for a line; the caller owns the clock and prints.
 */

/** No more than one progress line this often, and none before a build has run this long. */
export const PROGRESS_INTERVAL_MS = 15_000

/** How the step names each builder: in the progress line, and in the tag of each log line of a build there. */
export interface BuilderNames {
  /** Store URI → how the step names that builder (e.g. user@host:port); other URIs get machineLabel's short name. */
  labels?: ReadonlyMap<string, string>
  /**
   * What an empty machine name means: the runner, where the build hook leaves a build (the default: its log lines
   * carry no tag), or the builder whose store a remote-store build runs in (its daemon's builds come back with an
   * empty machine name).
   */
  local?: string
}

/** The runner's name in the line. */
const RUNNER_LABEL = 'runner'

/** "these 212 derivations will be built:" or "this derivation will be built:" (Nix 2.26, 2.34; 2.8 prints neither). */
const WILL_BE_BUILT = /^(?:these (\d+) derivations|this derivation) will be built:/

/** A copy between the runner and a builder: one end an SSH store (Nix 2.26 names a bare "ssh-ng://"). */
const SSH_STORE = /^ssh(?:-ng)?:\/\//

/** `@nix {"action":"result","fields":[…],"id":…,"type":105}`, a progress result line as isProgressLine accepts it. */
const PROGRESS_HEAD = '@nix {"action":"result","fields":['
const PROGRESS_TAIL = ',"type":105}'
const COMMA = 0x2c
const DIGIT_0 = 0x30
const DIGIT_5 = 0x35
const DIGIT_9 = 0x39
const EXACT_DIGITS = 15

function isDigit(code: number): boolean {
  return code >= DIGIT_0 && code <= DIGIT_9
}

function numberAt(fields: readonly (string | number)[], index: number): number {
  const field = fields[index]
  return typeof field === 'number' ? field : 0
}

/**
 * Follows one `nix build`'s log (a LogObserver of NixLogReader) and says how far it has come:
 * - the total: Nix's own "will be built" count (summed if Nix prints several); when there is none (Nix 2.8 prints no
 *   such list, even with -v: see the recorded logs), what the build's own actBuilds (104) activities expect;
 * - built: derivations whose actBuild (105) stopped and that no error message says failed, as in the ledger (the
 *   builder's own activity relayed over ssh-ng is not a build of its own);
 * - running: actBuild activities started and not stopped, per builder (RUNNER_LABEL for the runner);
 * - copied: NAR bytes of the copies (actCopyPath, 100) between the runner and builders, from their progress results;
 *   Nix 2.8 reports no progress on these copies, so there the line counts the paths copied instead.
 */
export class ProgressTracker implements LogObserver {
  private readonly ledger = new BuildLedger()
  /** Running actBuild activities of this `nix build`: id → machine. */
  private readonly running = new Map<number, string>()
  /** Running actBuild activities relayed from a builder: the build there (its stop ends the derivation's build). */
  private readonly relayed = new Set<number>()
  private listed: number | undefined
  /** The build's own actBuilds activities, while they run: id → the most derivations they expected. */
  private readonly expecting = new Map<number, number>()
  private expectedBefore = 0
  /** Copies between the runner and builders, while they run: id → bytes so far, and of how many. */
  private readonly copying = new Map<number, { done: number; size: number }>()
  private bytesBefore = 0
  private copiesDone = 0
  private changed = false
  private lastAt: number
  private lastLine: string

  constructor(
    private readonly clock: () => number,
    private readonly options: BuilderNames = {},
    private readonly interval = PROGRESS_INTERVAL_MS
  ) {
    this.lastAt = clock()
    this.lastLine = this.render()
  }

  /**
   * The line to print now, or `undefined`: too soon after the last one (or after the start), or nothing to tell that
   * the last one did not.
   */
  line(): string | undefined {
    if (!this.changed) return undefined
    const now = this.clock()
    if (now - this.lastAt < this.interval) return undefined
    this.changed = false
    const line = this.render()
    if (line === this.lastLine) return undefined
    this.lastAt = now
    this.lastLine = line
    return line
  }

  event(event: NixEvent): void {
    switch (event.action) {
      case 'start':
        this.start(event.id, event.type, event.fields)
        return
      case 'stop':
        this.stop(event.id)
        return
      case 'result':
        // The reader skips progress lines in Nix's own shape; any other shape arrives parsed.
        if (event.type === ResultType.Progress) this.progress(event.id, event.fields)
        return
      case 'msg':
        this.message(event.level, event.msg)
        return
    }
  }

  /**
   * A line isProgressLine accepted: Nix's own shape, numbers only, read here without JSON.parse (on a long build these
   * are half the log, and the copies' and the build's own are most of those).
   */
  progressLine(line: string): void {
    if (this.copying.size === 0 && this.expecting.size === 0) return
    // `…],"id":<id>,"type":10X}`: only 105, and the id alone decides whether the line is worth reading.
    if (line.charCodeAt(line.length - 2) !== DIGIT_5) return
    const idEnd = line.length - PROGRESS_TAIL.length
    let idStart = idEnd
    while (isDigit(line.charCodeAt(idStart - 1))) idStart--
    // Digit by digit is exact up to 15 digits; a longer id is rounded as JSON.parse rounded its start's.
    let id = 0
    if (idEnd - idStart > EXACT_DIGITS) id = Number(line.slice(idStart, idEnd))
    else for (let at = idStart; at < idEnd; at++) id = id * 10 + line.charCodeAt(at) - DIGIT_0
    if (!this.copying.has(id) && !this.expecting.has(id)) return
    // `[done,expected,running,failed]`: digits and commas up to the `]` before `,"id":`.
    const fields: number[] = []
    let value = 0
    for (let at = PROGRESS_HEAD.length; at < idStart; at++) {
      const code = line.charCodeAt(at)
      if (isDigit(code)) {
        value = value * 10 + code - DIGIT_0
      } else if (at === PROGRESS_HEAD.length) {
        break // `[]`
      } else {
        fields.push(value)
        value = 0
        if (code !== COMMA) break
      }
    }
    this.progress(id, fields)
  }

  private start(id: number, type: number, fields: readonly (string | number)[]): void {
    if (type === ActivityType.Build) {
      const [drvPath, machine] = fields
      if (typeof drvPath !== 'string') return
      const where = String(machine ?? '')
      if (this.ledger.startBuild(id, drvPath, where, 0)) this.relayed.add(id)
      else this.running.set(id, where)
      this.changed = true
    } else if (type === ActivityType.Builds) {
      // The builder's own actBuilds, relayed while one of its builds runs, counts that one build again.
      if (this.listed === undefined && !this.remoteRunning()) this.expecting.set(id, 0)
    } else if (type === ActivityType.CopyPath) {
      const [, from, to] = fields
      if (SSH_STORE.test(String(from ?? '')) || SSH_STORE.test(String(to ?? '')))
        this.copying.set(id, { done: 0, size: 0 })
    }
  }

  private stop(id: number): void {
    if (this.running.delete(id) || this.relayed.delete(id)) {
      this.ledger.stop(id, 0)
      this.changed = true
      return
    }
    const expected = this.expecting.get(id)
    if (expected !== undefined) {
      this.expectedBefore += expected
      this.expecting.delete(id)
      return
    }
    const copy = this.copying.get(id)
    if (copy !== undefined) {
      // Done: all of it, though Nix 2.26 may leave out its last progress result (121 of 128 bytes, then the stop).
      this.bytesBefore += Math.max(copy.done, copy.size)
      this.copiesDone += 1
      this.copying.delete(id)
      this.changed = true
    }
  }

  /** Progress results: [done, expected, running, failed]; bytes for a copy, derivations for actBuilds. */
  private progress(id: number, fields: readonly (string | number)[]): void {
    const done = numberAt(fields, 0)
    const expected = numberAt(fields, 1)
    const copy = this.copying.get(id)
    if (copy !== undefined) {
      copy.done = done
      copy.size = expected
      this.changed = true
      return
    }
    const before = this.expecting.get(id)
    // A failed derivation leaves `expected` for `failed`: their sum is what the build set out to do.
    const total = expected + numberAt(fields, 3)
    if (before !== undefined && total > before) {
      this.expecting.set(id, total)
      this.changed = true
    }
  }

  private message(level: number, msg: string): void {
    // One message a derivation to build ("  /nix/store/….drv" under the count): most are neither of these.
    if (msg.includes('will be built')) {
      const listed = WILL_BE_BUILT.exec(stripAnsi(msg))
      if (listed !== null) {
        this.listed = (this.listed ?? 0) + Number(listed[1] ?? 1)
        this.changed = true
      }
    }
    if (level !== 0) return
    for (const drvPath of failedDerivations(stripAnsi(msg))) {
      this.ledger.markFailed(drvPath)
      this.changed = true
    }
  }

  private remoteRunning(): boolean {
    for (const machine of this.running.values()) if (machine !== '') return true
    return false
  }

  private label(machine: string): string {
    if (machine === '') return this.options.local ?? RUNNER_LABEL
    return this.options.labels?.get(machine) ?? machineLabel(machine)
  }

  private render(): string {
    let built = 0
    let failed = 0
    let running = 0
    const perBuilder = new Map<string, number>()
    for (const record of this.ledger.records()) {
      if (record.status === 'built') built++
      else if (record.status === 'failed') failed++
      else if (record.end === undefined) {
        // Started and not done: on Nix 2.8 the runner's activity outlives the build, the builder's own one does not.
        running++
        const label = this.label(record.machine)
        perBuilder.set(label, (perBuilder.get(label) ?? 0) + 1)
      }
    }
    let expected = this.expectedBefore
    for (const count of this.expecting.values()) expected += count
    let total = this.listed ?? (expected > 0 ? expected : undefined)
    // Never fewer than those seen: a derivation built while evaluating (import-from-derivation) is in no list.
    if (total !== undefined) total = Math.max(total, built + failed + running)
    let bytes = this.bytesBefore
    for (const copy of this.copying.values()) bytes += copy.done
    return progressLine({ built, failed, total, running: perBuilder, bytes, copies: this.copiesDone })
  }
}

/** What a progress line says. */
export interface ProgressFigures {
  built: number
  failed: number
  /** Derivations to build, when Nix said. */
  total?: number
  /** Running builds per builder label. */
  running: ReadonlyMap<string, number>
  /** NAR bytes copied between the runner and builders so far. */
  bytes: number
  /** Copies finished: the figure shown when Nix reported no bytes (2.8). */
  copies: number
}

/** `progress: 37/212 derivations built (b1: 4 running, b2: 2 running), 1 failed, 1.2 GiB copied` */
export function progressLine(figures: ProgressFigures): string {
  const count = figures.total === undefined ? `${figures.built}` : `${figures.built}/${figures.total}`
  const noun = figures.total === undefined && figures.built === 1 ? 'derivation' : 'derivations'
  let line = `progress: ${count} ${noun} built`
  const running = [...figures.running]
    .filter(([, jobs]) => jobs > 0)
    .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(([label, jobs]) => `${label}: ${jobs} running`)
  if (running.length > 0) line += ` (${running.join(', ')})`
  if (figures.failed > 0) line += `, ${figures.failed} failed`
  if (figures.bytes > 0) line += `, ${formatBytes(figures.bytes)} copied`
  else if (figures.copies > 0) line += `, ${figures.copies} path${figures.copies === 1 ? '' : 's'} copied`
  return line
}

/** Bytes for people: B, KiB, MiB, GiB, TiB (powers of 1024, one decimal above bytes). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`
}

/**
 * A builder's short name from its store URI: `b<N>` for the action's own Host aliases (`nix-offload-<token>-<N>`,
 * runner/plan.ts: the Nth configured builder), otherwise the URI's host (`ssh-ng://user@host?x` → `host`).
 */
export function machineLabel(storeUri: string): string {
  const host = storeUri
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .replace(/^[^@/]*@/, '')
    .replace(/[?/].*$/, '')
  const alias = /^nix-offload-[0-9a-f]+-(\d+)$/.exec(host)
  if (alias !== null) return `b${alias[1]}`
  return host === '' ? storeUri : host
}

/** How long a build took, and how long each machine was busy with it. */
export interface BuildTimes {
  /** From the first derivation's start to the last one's end, in ms; 0 when nothing was built. */
  wallMs: number
  /**
   * Per machine (BuildRecord.machine: a store URI, '' for the runner), the time at least one of its derivations was
   * building: the union of their [start, end] intervals, in ms, so parallel builds are not counted twice.
   */
  busyMs: Map<string, number>
}

/**
 * The wall time and each machine's busy time from the ledger's records (epoch ms). A derivation still unfinished (the
 * build failed or was cut) counts until `until`, by default the latest start or end among the records.
 */
export function buildTimes(
  builds: readonly Pick<BuildRecord, 'machine' | 'start' | 'end'>[],
  until?: number
): BuildTimes {
  const busyMs = new Map<string, number>()
  if (builds.length === 0) return { wallMs: 0, busyMs }
  let last = -Infinity
  for (const build of builds) last = Math.max(last, build.start, build.end ?? build.start)
  if (until !== undefined) last = until
  let first = Infinity
  let end = -Infinity
  const byMachine = new Map<string, { start: number; end: number }[]>()
  for (const build of builds) {
    const interval = { start: build.start, end: Math.max(build.start, build.end ?? last) }
    first = Math.min(first, interval.start)
    end = Math.max(end, interval.end)
    const list = byMachine.get(build.machine) ?? []
    list.push(interval)
    byMachine.set(build.machine, list)
  }
  for (const [machine, list] of byMachine) busyMs.set(machine, unionLength(list))
  return { wallMs: end - first, busyMs }
}

/** The total length of a set of intervals, overlaps counted once. */
function unionLength(intervals: readonly { start: number; end: number }[]): number {
  const sorted = [...intervals].sort((a, b) => a.start - b.start)
  let total = 0
  let openStart = -Infinity
  let openEnd = -Infinity
  for (const { start, end } of sorted) {
    if (start > openEnd) {
      if (openEnd > openStart) total += openEnd - openStart
      openStart = start
      openEnd = end
    } else if (end > openEnd) {
      openEnd = end
    }
  }
  if (openEnd > openStart) total += openEnd - openStart
  return total
}
