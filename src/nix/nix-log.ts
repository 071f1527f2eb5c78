/**
 * Nix's `--log-format internal-json` stream: one `@nix {json}` object per stderr line (docs/nix.md, "Proving where a
 * derivation was built"). This module turns lines into typed events and nothing else.
 */

import { safeLine } from '../base/index.js'

/** Activity types (libutil/logging.hh). */
export enum ActivityType {
  Unknown = 0,
  CopyPath = 100,
  FileTransfer = 101,
  Realise = 102,
  CopyPaths = 103,
  Builds = 104,
  Build = 105,
  OptimiseStore = 106,
  VerifyPaths = 107,
  Substitute = 108,
  QueryPathInfo = 109,
  PostBuildHook = 110,
  BuildWaiting = 111
}

/** Result types (libutil/logging.hh). */
export enum ResultType {
  FileLinked = 100,
  BuildLogLine = 101,
  UntrustedPath = 102,
  CorruptedPath = 103,
  SetPhase = 104,
  Progress = 105,
  SetExpected = 106,
  PostBuildLogLine = 107
}

/** Verbosity levels (libutil/logging.hh): 0 error, 1 warn, 2 notice, 3 info … 7 vomit. */
export const LEVEL_WARN = 1
export const LEVEL_INFO = 3

export type Field = string | number

export type NixEvent =
  | { action: 'start'; id: number; type: number; level: number; text: string; fields: Field[] }
  | { action: 'stop'; id: number }
  | { action: 'result'; id: number; type: number; fields: Field[] }
  | { action: 'msg'; level: number; msg: string }

const PREFIX = '@nix '

/*
 * Fast paths for the lines that make up nearly all of a big build's log, in the one shape Nix writes them
 * (nlohmann::json, keys sorted: action, fields, id, type). A line in any other shape takes the full JSON.parse.
 * Regular expressions rather than startsWith: V8 compares a long prefix several times faster with one.
 */
/** A progress (105) or set-expected (106) result: numbers only, so no build's output can pose as one. */
const PROGRESS_LINE =
  /^@nix \{"action":"result","fields":\[(?:(?:0|[1-9]\d*)(?:,(?:0|[1-9]\d*))*)?\],"id":(?:0|[1-9]\d*),"type":10[56]\}$/
/** A result whose first field is a string: build log lines (101, 107) and phases (104). */
const TEXT_RESULT_START = /^@nix \{"action":"result","fields":\["/
const TEXT_START = '@nix {"action":"result","fields":['.length
const ID_KEY = '],"id":'
const TYPE_KEY = ',"type":'
const CLOSE_BRACE = 0x7d
const DIGIT_0 = 0x30
const DIGIT_5 = 0x35
const DIGIT_6 = 0x36
const DIGIT_9 = 0x39
/** Integers of up to 15 digits are exact when summed digit by digit; longer ones go through Number(). */
const EXACT_DIGITS = 15

/** Parses one stderr line; `undefined` for lines that are not internal-json events (Nix prints a few plain ones). */
export function parseNixLine(line: string): NixEvent | undefined {
  if (!line.startsWith(PREFIX)) return undefined
  const result = parseTextResult(line)
  if (result !== undefined) return result
  let value: unknown
  try {
    value = JSON.parse(line.slice(PREFIX.length))
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null || !('action' in value)) return undefined
  const event: Record<string, unknown> = { ...value }
  switch (event.action) {
    case 'start':
      return {
        action: 'start',
        id: numberOf(event.id),
        type: numberOf(event.type),
        level: numberOf(event.level),
        text: typeof event.text === 'string' ? event.text : '',
        fields: fieldsOf(event.fields)
      }
    case 'stop':
      return { action: 'stop', id: numberOf(event.id) }
    case 'result':
      return {
        action: 'result',
        id: numberOf(event.id),
        type: numberOf(event.type),
        fields: fieldsOf(event.fields)
      }
    case 'msg':
      return {
        action: 'msg',
        level: numberOf(event.level),
        msg: typeof event.msg === 'string' ? event.msg : ''
      }
    default:
      return undefined
  }
}

/**
 * Whether the line is a progress (105) or set-expected (106) result, exactly as Nix writes it: about half the lines of
 * a big build's log, and nothing the action reads, so the log reader skips them before parsing. parseNixLine reads
 * every line this accepts as a result of type 105 or 106; anything else, however close (a start of type 105, a build
 * log line quoting `"type":105}`), is left to parseNixLine.
 */
export function isProgressLine(line: string): boolean {
  // Nearly every other line fails on its last two characters, before the regular expression runs.
  const last = line.length - 1
  const typeDigit = line.charCodeAt(last - 1)
  return (
    line.charCodeAt(last) === CLOSE_BRACE &&
    (typeDigit === DIGIT_5 || typeDigit === DIGIT_6) &&
    PROGRESS_LINE.test(line)
  )
}

/**
 * A result whose only field is a string (build log lines, phases), read without parsing the whole object: only the
 * text needs JSON.parse. `undefined` for any other shape, which the caller parses in full.
 */
function parseTextResult(line: string): NixEvent | undefined {
  if (!TEXT_RESULT_START.test(line)) return undefined
  // `…],"id":<id>,"type":<type>}`, read from the end: the text is all that comes before.
  const typeEnd = line.length - 1
  const typeStart = integerStart(line, typeEnd)
  const idEnd = typeStart - TYPE_KEY.length
  const idStart = integerStart(line, idEnd)
  if (
    line.charCodeAt(typeEnd) !== CLOSE_BRACE ||
    typeStart < 0 ||
    idStart < 0 ||
    !line.endsWith(TYPE_KEY, typeStart) ||
    !line.endsWith(ID_KEY, idStart)
  ) {
    return undefined
  }
  let text: unknown
  try {
    text = JSON.parse(line.slice(TEXT_START, idStart - ID_KEY.length))
  } catch {
    // Not one string, e.g. two: the full parse decides.
    return undefined
  }
  if (typeof text !== 'string') return undefined
  return {
    action: 'result',
    id: integerAt(line, idStart, idEnd),
    type: integerAt(line, typeStart, typeEnd),
    fields: [text]
  }
}

/** Where the JSON integer (digits, no sign, no leading zero) ending just before `end` starts; -1 if there is none. */
function integerStart(line: string, end: number): number {
  let at = end
  for (let code = line.charCodeAt(at - 1); code >= DIGIT_0 && code <= DIGIT_9; code = line.charCodeAt(at - 1))
    at--
  if (at === end || (line.charCodeAt(at) === DIGIT_0 && end - at > 1)) return -1
  return at
}

function integerAt(line: string, start: number, end: number): number {
  if (end - start > EXACT_DIGITS) return Number(line.slice(start, end))
  let value = 0
  for (let at = start; at < end; at++) value = value * 10 + (line.charCodeAt(at) - DIGIT_0)
  return value
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]/g

/** Nix colours its messages; matching needs plain text. */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, '')
}

/** `/nix/store/<hash>-hello-2.12.drv` → `hello-2.12` */
export function derivationName(drvPath: string): string {
  const base = drvPath.slice(drvPath.lastIndexOf('/') + 1).replace(/\.drv$/, '')
  const dash = base.indexOf('-')
  return dash === 32 ? base.slice(dash + 1) : base
}

function numberOf(value: unknown): number {
  return typeof value === 'number' ? value : -1
}

function fieldsOf(value: unknown): Field[] {
  if (!Array.isArray(value)) return []
  return value.filter((item): item is Field => typeof item === 'string' || typeof item === 'number')
}

/**
 * Cuts a byte stream into lines without ever decoding half a UTF-8 character (a newline byte is never part of one).
 * Keeps only the unfinished line, as copies: the caller may reuse its chunks.
 */
export class LineSplitter {
  private unfinished: Buffer[] = []

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    let newline = chunk.indexOf(0x0a)
    if (newline < 0) {
      if (chunk.length > 0) this.unfinished.push(Buffer.from(chunk))
      return
    }
    let start = 0
    if (this.unfinished.length > 0) {
      this.unfinished.push(chunk.subarray(0, newline))
      const line = Buffer.concat(this.unfinished).toString('utf8')
      this.unfinished = []
      this.onLine(line)
      start = newline + 1
      newline = chunk.indexOf(0x0a, start)
    }
    while (newline >= 0) {
      this.onLine(chunk.toString('utf8', start, newline))
      start = newline + 1
      newline = chunk.indexOf(0x0a, start)
    }
    if (start < chunk.length) this.unfinished.push(Buffer.from(chunk.subarray(start)))
  }

  end(): void {
    if (this.unfinished.length > 0) this.onLine(Buffer.concat(this.unfinished).toString('utf8'))
    this.unfinished = []
  }
}

/**
 * A store path as Nix makes it: the store directory, 32 characters of Nix's base-32 (no e, o, t or u), a dash and a
 * name of letters, digits and `+-._?=` that does not start with a dot. Paths named by Nix's log or by a builder's
 * answers are checked against this before they reach the ledger or a command line: a hostile builder could otherwise
 * hand the runner's `nix` an `--option` or a path outside the store.
 */
const STORE_PATH_BASE = /^[0-9a-df-np-sv-z]{32}-(?!\.)[A-Za-z0-9+\-._?=]{1,211}$/

/** Nix's default store directory; a Nix built or run with another (NIX_STORE_DIR) names its paths under that. */
export const DEFAULT_STORE_DIR = '/nix/store'

/** The store directory the runner's `nix` uses, as that `nix` reads it from its environment. */
export function storeDirOf(env: NodeJS.ProcessEnv): string {
  const dir = env.NIX_STORE_DIR ?? env.NIX_STORE ?? ''
  return /^\/[^\s]*[^/\s]$/.test(dir) ? dir : DEFAULT_STORE_DIR
}

export function isStorePath(path: string, storeDir = DEFAULT_STORE_DIR): boolean {
  return path.startsWith(`${storeDir}/`) && STORE_PATH_BASE.test(path.slice(storeDir.length + 1))
}

/**
 * Keeps the store paths among those it is shown and counts the others, for one warning that quotes the first of them
 * made harmless to print.
 */
export class StorePathFilter {
  private rejected = 0
  private firstRejected: string | undefined

  constructor(readonly storeDir = DEFAULT_STORE_DIR) {}

  /** Whether `path` is a store path; counts it when it is not. */
  admit(path: string): boolean {
    if (isStorePath(path, this.storeDir)) return true
    this.rejected++
    this.firstRejected ??= path
    return false
  }

  keep(paths: readonly string[]): string[] {
    return paths.filter(path => this.admit(path))
  }

  /** The warning for what was left out, or undefined when all were store paths. */
  warning(source: string): string | undefined {
    if (this.rejected === 0 || this.firstRejected === undefined) return undefined
    const first = safeLine(this.firstRejected.slice(0, 200))
    return (
      `${source} named ${this.rejected} store path(s) that are no store paths under ${this.storeDir} (the first: ` +
      `"${first}"); they were left out of the ledger and of every command.`
    )
  }
}
