import * as fs from 'node:fs'
import * as childProcess from 'node:child_process'
import { childEnvironment, runChecked } from '../base/index.js'

/**
 * One file operation on the runner; contents travel base64-encoded or as text. Shared files (root's ssh config, the
 * daemon's machines file, nix.conf) are only ever changed by blocks: a job adds its own marked block and takes away
 * exactly that block, under a lock per file, by writing a temporary file and renaming it over the old one (mode and
 * owner kept), so jobs that overlap on one runner never lose, remove or revive each other's lines.
 */
export type FileOp =
  /** Whether the path exists, and a file's bytes if it does. */
  | { op: 'read-if-exists'; path: string }
  /** A new file, unreadable to others from its first byte, then given `mode`. */
  | { op: 'create'; path: string; data: string; mode: number }
  /** An existing file rewritten in place: owner, mode and inode stay. */
  | { op: 'overwrite'; path: string; data: string }
  | { op: 'mkdir'; path: string }
  | { op: 'remove-tree'; path: string }
  /** A command whose failure is fine (closing SSH masters). */
  | { op: 'attempt'; argv: string[] }
  /**
   * Adds this job's block (`text`, from its begin to its end marker line) at the top or the end of a shared file,
   * creating the file (`mode`) and its directory (0700) if missing. With `restart`, runs that command under the lock
   * when the settings of all blocks together changed (the nix-daemon reads nix.conf only when it starts).
   */
  | {
      op: 'add-block'
      path: string
      token: string
      text: string
      at: 'top' | 'end'
      mode: number
      restart?: string[]
    }
  /** Replaces the lines inside this job's block (the canary's machines file, one builder at a time). */
  | { op: 'set-block'; path: string; token: string; text: string }
  /**
   * Takes away exactly this job's block, with the newline that came with it (`at` as it was added). A file (and directory) that the
   * action created goes with the last block. Answers how many other jobs' blocks are left.
   */
  | { op: 'remove-block'; path: string; token: string; at: 'top' | 'end'; restart?: string[] }

export interface FileResult {
  ok: boolean
  exists?: boolean
  data?: string
  error?: string
  /** remove-block: other jobs' blocks still in the file. */
  others?: number
  /** add-block/remove-block: the `restart` command ran. */
  restarted?: boolean
}

type Fs = Pick<
  typeof fs,
  | 'existsSync'
  | 'readFileSync'
  | 'openSync'
  | 'writeSync'
  | 'closeSync'
  | 'fchmodSync'
  | 'fchownSync'
  | 'fsyncSync'
  | 'statSync'
  | 'realpathSync'
  | 'renameSync'
  | 'linkSync'
  | 'unlinkSync'
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

export interface AgentContext {
  files: Fs
  spawn: Spawn
  /** Where the per-file lock files live (the agent's temporary directory). */
  lockDir: string
  /** How long to wait for another job's lock before failing. */
  lockWaitMs: number
}

/**
 * Carries out the operations in order and says how each went. It stops at the first failure unless `keepGoing`.
 * Self-contained on purpose: as root it runs as `sudo node -e <its source>`, one process for a whole plan instead of a
 * sudo round trip per file (each costs tens of milliseconds), with the operations on stdin, never in argv.
 */
export function runFileOps(context: AgentContext, ops: FileOp[], keepGoing: boolean): FileResult[] {
  const { files, spawn, lockDir, lockWaitMs } = context
  const MADE =
    '# nix-offload: this file was made by the nix-offload action, and goes with the block of the last job\n'
  const MADE_WITH_DIR =
    '# nix-offload: this file and its directory were made by the nix-offload action, and go with the block of the last job\n'
  const beginLine = (token: string): string => `# nix-offload ${token}: begin`
  const endLine = (token: string): string => `# nix-offload ${token}: end`
  const sleep = (ms: number): void => {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
  }
  const errorCode = (error: unknown): string =>
    typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : ''

  const writeAll = (fd: number, data: Buffer): void => {
    let offset = 0
    while (offset < data.length) offset += files.writeSync(fd, data, offset, data.length - offset)
  }
  const write = (path: string, data: Buffer, flags: string, mode: number): void => {
    const fd = files.openSync(path, flags, mode)
    try {
      writeAll(fd, data)
    } finally {
      files.closeSync(fd)
    }
  }

  /**
   * A lock file per shared file, taken with O_EXCL and removed when done. One left by a holder that is gone (killed
   * half-way) is broken after 2 s; it is judged again once moved aside, so that a lock another job took meanwhile is
   * given back instead of broken.
   */
  const lock = (path: string): (() => void) => {
    const lockPath = `${lockDir}/nix-offload-lock-${encodeURIComponent(path)}`
    const abandoned = (file: string): boolean => {
      const stat = files.statSync(file)
      if (stat.uid !== process.getuid?.()) return true
      if (Date.now() - stat.mtimeMs < 2_000) return false
      const holder = Number(files.readFileSync(file, 'utf8'))
      if (!Number.isInteger(holder) || holder <= 0) return true
      try {
        process.kill(holder, 0)
        return false
      } catch (error) {
        return errorCode(error) === 'ESRCH'
      }
    }
    const started = Date.now()
    for (;;) {
      try {
        write(lockPath, Buffer.from(String(process.pid)), 'wx', 0o600)
        return () => files.unlinkSync(lockPath)
      } catch (error) {
        if (errorCode(error) !== 'EEXIST') throw error
      }
      let gone: boolean
      try {
        gone = abandoned(lockPath)
      } catch {
        continue // released meanwhile
      }
      if (gone) {
        const aside = `${lockPath}.${process.pid}`
        try {
          files.renameSync(lockPath, aside)
        } catch {
          continue
        }
        let really = true
        try {
          really = abandoned(aside)
        } catch {
          // unreadable: broken all the same
        }
        if (!really) {
          try {
            files.linkSync(aside, lockPath)
          } catch {
            // taken again already
          }
        }
        files.unlinkSync(aside)
        continue
      }
      if (Date.now() - started > lockWaitMs)
        throw new Error(`another nix-offload job has held ${lockPath} for over ${lockWaitMs / 1000} s`)
      sleep(25)
    }
  }

  /** Writes a temporary file beside `path` and renames it over, keeping the old file's mode and owner. */
  const replace = (path: string, text: string, mode: number): void => {
    const existing = files.existsSync(path) ? files.statSync(path) : undefined
    const temporary = `${path}.nix-offload-${process.pid}.tmp`
    const fd = files.openSync(temporary, 'wx', 0o600)
    try {
      writeAll(fd, Buffer.from(text))
      if (existing !== undefined) {
        try {
          files.fchownSync(fd, existing.uid, existing.gid)
        } catch (error) {
          if (process.getuid?.() === 0) throw error
        }
      }
      files.fchmodSync(fd, existing === undefined ? mode : existing.mode & 0o7777)
      files.fsyncSync(fd)
    } finally {
      files.closeSync(fd)
    }
    files.renameSync(temporary, path)
  }

  const findBlock = (text: string, token: string): [number, number] | undefined => {
    // The begin line at the start of a line: with a newline put before the text, its index is the line's own.
    const start = `\n${text}`.indexOf(`\n${beginLine(token)}`)
    if (start < 0) return undefined
    const end = endLine(token)
    const endAt = text.indexOf(`\n${end}`, start)
    if (endAt < 0) return undefined
    return [start, endAt + 1 + end.length]
  }
  const blockTokens = (text: string): string[] =>
    [...text.matchAll(/^# nix-offload ([0-9a-f]+): begin/gm)].map(match => match[1] ?? '')
  /** The setting lines of every block, as a set: what the daemon would see of all the jobs together. */
  const settingsOf = (text: string): string => {
    const lines = new Set<string>()
    for (const token of blockTokens(text)) {
      const found = findBlock(text, token)
      if (found === undefined) continue
      for (const line of text.slice(found[0], found[1]).split('\n'))
        if (line.trim() !== '' && !line.startsWith('#')) lines.add(line.trim())
    }
    return [...lines].sort().join('\n')
  }
  const restartIf = (argv: string[] | undefined, before: string, after: string): boolean => {
    if (argv === undefined || settingsOf(before) === settingsOf(after)) return false
    const [command = 'true', ...args] = argv
    const status = spawn(command, args, { stdio: 'ignore', timeout: 120_000 }).status
    if (status !== 0) throw new Error(`${argv.join(' ')} failed (exit ${String(status)})`)
    return true
  }
  const realPath = (path: string): string => (files.existsSync(path) ? files.realpathSync(path) : path)

  const blockOp = (op: Extract<FileOp, { op: 'add-block' | 'set-block' | 'remove-block' }>): FileResult => {
    const path = realPath(op.path)
    const unlock = lock(path)
    try {
      const exists = files.existsSync(path)
      const before = exists ? files.readFileSync(path, 'utf8') : ''
      if (op.op === 'add-block') {
        if (findBlock(before, op.token) !== undefined) return { ok: true }
        let text = before
        if (!exists) {
          const dir = path.slice(0, path.lastIndexOf('/')) || '/'
          let madeDir = false
          if (!files.existsSync(dir)) {
            files.mkdirSync(dir, { mode: 0o700 })
            madeDir = true
          }
          text = madeDir ? MADE_WITH_DIR : MADE
        }
        // On top: the block and its final newline. At the end: a newline (ending the last line, which may have none),
        // then the block without one. Either way the block's own bytes are the same few lines to take away again.
        const block = op.text.replace(/\n$/, '')
        const after = op.at === 'top' ? `${block}\n${text}` : `${text}\n${block}`
        replace(path, after, op.mode)
        return { ok: true, restarted: restartIf(op.restart, before, after) }
      }
      const found = findBlock(before, op.token)
      if (op.op === 'set-block') {
        if (found === undefined) throw new Error(`no block of ${op.token} in ${path}`)
        replace(path, before.slice(0, found[0]) + op.text.replace(/\n$/, '') + before.slice(found[1]), 0o600)
        return { ok: true }
      }
      if (found === undefined) return { ok: true, others: blockTokens(before).length }
      const [start, stop] = found
      const after =
        op.at === 'top'
          ? before.slice(0, start) + before.slice(before[stop] === '\n' ? stop + 1 : stop)
          : before.slice(0, before[start - 1] === '\n' ? start - 1 : start) + before.slice(stop)
      if (after === MADE || after === MADE_WITH_DIR) {
        files.unlinkSync(path)
        const dir = path.slice(0, path.lastIndexOf('/'))
        if (after === MADE_WITH_DIR && files.readdirSync(dir).length === 0) files.rmdirSync(dir)
      } else replace(path, after, 0o600)
      const now = files.existsSync(path) ? files.readFileSync(path, 'utf8') : ''
      if (findBlock(now, op.token) !== undefined) throw new Error(`its block is still in ${path}`)
      return { ok: true, others: blockTokens(now).length, restarted: restartIf(op.restart, before, now) }
    } finally {
      unlock()
    }
  }

  const results: FileResult[] = []
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
      } else if (op.op === 'mkdir') {
        files.mkdirSync(op.path, { mode: 0o700 })
        results.push({ ok: true })
      } else if (op.op === 'remove-tree') {
        files.rmSync(op.path, { recursive: true, force: true })
        results.push({ ok: true })
      } else if (op.op === 'attempt') {
        const [command = 'true', ...args] = op.argv
        results.push({ ok: spawn(command, args, { stdio: 'ignore', timeout: 10_000 }).status === 0 })
      } else {
        results.push(blockOp(op))
      }
    } catch (error) {
      results.push({ ok: false, error: error instanceof Error ? error.message : String(error) })
      if (!keepGoing) break
    }
  }
  return results
}

/** The agent as a Node program: `{ ops, keepGoing, lockDir, lockWaitMs }` as JSON on stdin, results on stdout. */
export function agentProgram(): string {
  return (
    "const fs = require('fs'); const input = JSON.parse(fs.readFileSync(0, 'utf8')); " +
    `process.stdout.write(JSON.stringify((${runFileOps.toString()})({ files: fs, ` +
    "spawn: require('child_process').spawnSync, lockDir: input.lockDir, lockWaitMs: input.lockWaitMs }, " +
    'input.ops, input.keepGoing)))'
  )
}

/** Runs the operations as root through one `sudo -n node` (or in this process when no sudo is needed). */
export async function fileOps(
  ops: FileOp[],
  options: { viaSudo: boolean; keepGoing: boolean; lockDir?: string }
): Promise<FileResult[]> {
  if (ops.length === 0) return []
  if (!options.viaSudo) {
    // In this process, children would inherit the step's inputs; under sudo, its env_reset drops them.
    const spawn: Spawn = (command, args, spawnOptions) =>
      childProcess.spawnSync(command, args, { ...spawnOptions, env: childEnvironment(process.env) })
    return runFileOps(
      { files: fs, spawn, lockDir: options.lockDir ?? LOCK_DIR, lockWaitMs: LOCK_WAIT_MS },
      ops,
      options.keepGoing
    )
  }
  const output = await runChecked('sudo', ['-n', process.execPath, '-e', agentProgram()], {
    input: JSON.stringify({
      ops,
      keepGoing: options.keepGoing,
      lockDir: options.lockDir ?? LOCK_DIR,
      lockWaitMs: LOCK_WAIT_MS
    }),
    // sudo itself may wait (a PAM module, a password prompt it cannot show): bounded like everything else.
    timeoutMs: 120_000 + LOCK_WAIT_MS
  })
  return parseResults(output.toString())
}

/**
 * One place every job on the host sees (not TMPDIR or RUNNER_TEMP, which may be a job's own). Creating with O_EXCL
 * follows no symlink, and a lock file not owned by the agent's user is never taken as held.
 */
const LOCK_DIR = '/tmp'
/** Long enough for another job's whole batch, daemon restart included. */
const LOCK_WAIT_MS = 180_000
function parseResults(text: string): FileResult[] {
  const parsed: unknown = JSON.parse(text)
  if (!Array.isArray(parsed)) throw new Error('the file agent answered something other than a list')
  return parsed.map((item: unknown): FileResult => {
    if (typeof item !== 'object' || item === null) return { ok: false, error: 'no answer' }
    const result: FileResult = { ok: 'ok' in item && item.ok === true }
    if ('exists' in item && typeof item.exists === 'boolean') result.exists = item.exists
    if ('data' in item && typeof item.data === 'string') result.data = item.data
    if ('error' in item && typeof item.error === 'string') result.error = item.error
    if ('others' in item && typeof item.others === 'number') result.others = item.others
    if ('restarted' in item && typeof item.restarted === 'boolean') result.restarted = item.restarted
    return result
  })
}

/** Throws the first failure of a batch that had to succeed whole. */
export function checkAll(ops: FileOp[], results: FileResult[]): void {
  const failed = results.findIndex(result => !result.ok)
  if (failed >= 0 || results.length < ops.length) {
    const op = ops[failed >= 0 ? failed : results.length]
    const where = op === undefined ? '' : 'path' in op ? op.path : op.argv.join(' ')
    throw new Error(`cannot ${op?.op ?? 'change'} ${where}: ${results[failed]?.error ?? 'not done'}`)
  }
}
