import * as fs from 'node:fs'
import * as childProcess from 'node:child_process'
import { childEnvironment, runChecked } from '../base/index.js'

/** One file operation on the runner; contents travel base64-encoded. */
export type FileOp =
  /** Whether the path exists, and a file's bytes if it does. */
  | { op: 'read-if-exists'; path: string }
  /** A new file, unreadable to others from its first byte, then given `mode`. */
  | { op: 'create'; path: string; data: string; mode: number }
  /** An existing file rewritten in place: owner, mode and inode stay. */
  | { op: 'overwrite'; path: string; data: string }
  /** `to` rewritten in place with the bytes of `from` (a backup), without them leaving the agent. */
  | { op: 'copy'; from: string; to: string }
  | { op: 'mkdir'; path: string }
  | { op: 'remove'; path: string }
  | { op: 'remove-tree'; path: string }
  /** Removes a directory only if it is empty; a missing one is fine. */
  | { op: 'remove-empty-dir'; path: string }
  /** A command whose failure is fine (closing SSH masters). */
  | { op: 'attempt'; argv: string[] }

export interface FileResult {
  ok: boolean
  exists?: boolean
  data?: string
  error?: string
}

type Fs = Pick<
  typeof fs,
  | 'existsSync'
  | 'readFileSync'
  | 'openSync'
  | 'writeSync'
  | 'closeSync'
  | 'fchmodSync'
  | 'mkdirSync'
  | 'rmSync'
  | 'rmdirSync'
  | 'readdirSync'
>
type Spawn = (
  command: string,
  args: string[],
  options: { stdio: 'ignore'; timeout: number }
) => { status: number | null }

/**
 * Carries out the operations in order and says how each went. It stops at the first failure unless `keepGoing`.
 * Self-contained on purpose: as root it runs as `sudo node -e <its source>`, one process for a whole plan instead of a
 * sudo round trip per file (each costs tens of milliseconds), with the operations on stdin, never in argv.
 */
export function runFileOps(files: Fs, spawn: Spawn, ops: FileOp[], keepGoing: boolean): FileResult[] {
  const results: FileResult[] = []
  const write = (path: string, data: Buffer, flags: string, mode: number): void => {
    const fd = files.openSync(path, flags, mode)
    try {
      let offset = 0
      while (offset < data.length) offset += files.writeSync(fd, data, offset, data.length - offset)
    } finally {
      files.closeSync(fd)
    }
  }
  for (const op of ops) {
    try {
      if (op.op === 'read-if-exists') {
        const exists = files.existsSync(op.path)
        results.push(
          exists
            ? { ok: true, exists, data: files.readFileSync(op.path).toString('base64') }
            : { ok: true, exists }
        )
      } else if (op.op === 'create') {
        const fd = files.openSync(op.path, 'wx', 0o600)
        files.closeSync(fd)
        write(op.path, Buffer.from(op.data, 'base64'), 'w', 0o600)
        const handle = files.openSync(op.path, 'r')
        files.fchmodSync(handle, op.mode)
        files.closeSync(handle)
        results.push({ ok: true })
      } else if (op.op === 'overwrite') {
        write(op.path, Buffer.from(op.data, 'base64'), 'w', 0o600)
        results.push({ ok: true })
      } else if (op.op === 'copy') {
        write(op.to, files.readFileSync(op.from), 'w', 0o600)
        results.push({ ok: true })
      } else if (op.op === 'mkdir') {
        files.mkdirSync(op.path, { mode: 0o700 })
        results.push({ ok: true })
      } else if (op.op === 'remove') {
        files.rmSync(op.path, { force: true })
        results.push({ ok: true })
      } else if (op.op === 'remove-tree') {
        files.rmSync(op.path, { recursive: true, force: true })
        results.push({ ok: true })
      } else if (op.op === 'remove-empty-dir') {
        if (files.existsSync(op.path) && files.readdirSync(op.path).length > 0)
          results.push({ ok: false, error: 'not empty' })
        else {
          if (files.existsSync(op.path)) files.rmdirSync(op.path)
          results.push({ ok: true })
        }
      } else {
        const [command = 'true', ...args] = op.argv
        results.push({ ok: spawn(command, args, { stdio: 'ignore', timeout: 10_000 }).status === 0 })
      }
    } catch (error) {
      results.push({ ok: false, error: error instanceof Error ? error.message : String(error) })
      if (!keepGoing) break
    }
  }
  return results
}

/** Runs the operations as root through one `sudo -n node` (or in this process when no sudo is needed). */
export async function fileOps(
  ops: FileOp[],
  options: { viaSudo: boolean; keepGoing: boolean }
): Promise<FileResult[]> {
  if (ops.length === 0) return []
  if (!options.viaSudo) {
    // In this process, children would inherit the step's inputs; under sudo, its env_reset drops them.
    const spawn: Spawn = (command, args, spawnOptions) =>
      childProcess.spawnSync(command, args, { ...spawnOptions, env: childEnvironment(process.env) })
    return runFileOps(fs, spawn, ops, options.keepGoing)
  }
  const program =
    "const fs = require('fs'); const input = JSON.parse(fs.readFileSync(0, 'utf8')); " +
    `process.stdout.write(JSON.stringify((${runFileOps.toString()})(fs, require('child_process').spawnSync, ` +
    'input.ops, input.keepGoing)))'
  const output = await runChecked('sudo', ['-n', process.execPath, '-e', program], {
    input: JSON.stringify({ ops, keepGoing: options.keepGoing }),
    // sudo itself may wait (a PAM module, a password prompt it cannot show): bounded like everything else.
    timeoutMs: 120_000
  })
  return parseResults(output.toString())
}

function parseResults(text: string): FileResult[] {
  const parsed: unknown = JSON.parse(text)
  if (!Array.isArray(parsed)) throw new Error('the file agent answered something other than a list')
  return parsed.map((item: unknown): FileResult => {
    if (typeof item !== 'object' || item === null) return { ok: false, error: 'no answer' }
    const result: FileResult = { ok: 'ok' in item && item.ok === true }
    if ('exists' in item && typeof item.exists === 'boolean') result.exists = item.exists
    if ('data' in item && typeof item.data === 'string') result.data = item.data
    if ('error' in item && typeof item.error === 'string') result.error = item.error
    return result
  })
}

/** Throws the first failure of a batch that had to succeed whole. */
export function checkAll(ops: FileOp[], results: FileResult[]): void {
  const failed = results.findIndex(result => !result.ok)
  if (failed >= 0 || results.length < ops.length) {
    const op = ops[failed >= 0 ? failed : results.length]
    const where = op === undefined ? '' : 'path' in op ? op.path : 'to' in op ? op.to : op.argv.join(' ')
    throw new Error(`cannot ${op?.op ?? 'change'} ${where}: ${results[failed]?.error ?? 'not done'}`)
  }
}
