/**
 * Nix's `--log-format internal-json` stream: one `@nix {json}` object per stderr line (see NIX-FACTS.md). This module
 * turns lines into typed events and nothing else.
 */

/** Activity types (libutil/logging.hh). */
export enum ActivityType {
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

/** Parses one stderr line; `undefined` for lines that are not internal-json events (Nix prints a few plain ones). */
export function parseNixLine(line: string): NixEvent | undefined {
  if (!line.startsWith(PREFIX)) return undefined
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

/** Cuts a byte stream into lines without ever decoding half a UTF-8 character; keeps only the unfinished line. */
export class LineSplitter {
  private rest: Buffer = Buffer.alloc(0)

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    const data = this.rest.length === 0 ? chunk : Buffer.concat([this.rest, chunk])
    let start = 0
    let newline = data.indexOf(0x0a, start)
    while (newline >= 0) {
      this.onLine(data.toString('utf8', start, newline))
      start = newline + 1
      newline = data.indexOf(0x0a, start)
    }
    this.rest = start === data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(start))
  }

  end(): void {
    if (this.rest.length > 0) this.onLine(this.rest.toString('utf8'))
    this.rest = Buffer.alloc(0)
  }
}
