import { spawnSync } from 'node:child_process'
import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeSync
} from 'node:fs'
import { dirname } from 'node:path'
import {
  blockTokens,
  findBlock,
  MADE,
  MADE_WITH_DIR,
  settingsOf,
  withBlock,
  withBlockReplaced,
  withoutBlock
} from './blocks.js'
import { defaultLockDir, type LockTool, takeLock } from './lock.js'
import type { AgentRequest, BlockOp, FileOp, FileResult } from './ops.js'
import { editablePath, readRegular, replaceFile } from './replace.js'

export interface AgentContext {
  /** The environment of the commands it runs (the step's inputs are not in it). */
  env: NodeJS.ProcessEnv
  lockTool?: LockTool
}

/**
 * Carries out the operations in order and says how each went; it stops at the first failure unless `keepGoing`. As
 * root it is one `sudo node` for a whole plan instead of a sudo round trip per file, with the operations on stdin.
 */
export function runAgent(request: AgentRequest, context: AgentContext = { env: process.env }): FileResult[] {
  const results: FileResult[] = []
  for (const op of request.ops) {
    try {
      results.push(runOp(op, request, context))
    } catch (error) {
      results.push({ ok: false, error: error instanceof Error ? error.message : String(error) })
      if (!request.keepGoing) break
    }
  }
  return results
}

function runOp(op: FileOp, request: AgentRequest, context: AgentContext): FileResult {
  switch (op.op) {
    case 'read-if-exists':
      return existsSync(op.path)
        ? { ok: true, exists: true, data: readFileSync(op.path).toString('base64') }
        : { ok: true, exists: false }
    case 'create':
      writeNoFollow(op.path, op.data, constants.O_CREAT | constants.O_EXCL, op.mode)
      return { ok: true }
    case 'overwrite':
      writeNoFollow(op.path, op.data, constants.O_CREAT | constants.O_TRUNC)
      return { ok: true }
    case 'mkdir':
      mkdirSync(op.path, { mode: 0o700 })
      return { ok: true }
    case 'remove-tree':
      rmSync(op.path, { recursive: true, force: true })
      return { ok: true }
    case 'attempt': {
      const [command = 'true', ...args] = op.argv
      const { status } = spawnSync(command, args, { stdio: 'ignore', timeout: 10_000, env: context.env })
      return { ok: status === 0 }
    }
    default:
      return blockOp(op, request, context)
  }
}

/** Writes base64 `data` to `path` through no symlink, unreadable to others until it is given `mode`. */
function writeNoFollow(path: string, data: string, flags: number, mode?: number): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW | flags, 0o600)
  try {
    const bytes = Buffer.from(data, 'base64')
    let offset = 0
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset)
    if (mode !== undefined) fchmodSync(fd, mode)
  } finally {
    closeSync(fd)
  }
}

function blockOp(op: BlockOp, request: AgentRequest, context: AgentContext): FileResult {
  const path = editablePath(op.path)
  const lock = takeLock(path, {
    dir: request.lockDir ?? defaultLockDir(),
    waitMs: request.lockWaitMs,
    holder: `job ${op.token}`,
    env: context.env,
    ...(context.lockTool === undefined ? {} : { tool: context.lockTool })
  })
  try {
    if (op.op === 'add-block') return addBlock(op, path, context)
    if (op.op === 'set-block') return setBlock(op, path)
    return removeBlock(op, path, context)
  } finally {
    lock.release()
  }
}

function addBlock(
  op: Extract<BlockOp, { op: 'add-block' }>,
  path: string,
  context: AgentContext
): FileResult {
  const old = readRegular(path)
  const before = old?.text ?? ''
  // A token is 128 random bits: a block that has it already is not this job's to take over, or to take away later.
  if (findBlock(before, op.token) !== undefined)
    throw new Error(`a block with this job's token already exists in ${path}`)
  let text = before
  if (old === undefined) {
    const dir = dirname(path)
    const madeDir = !existsSync(dir)
    if (madeDir) mkdirSync(dir, { mode: 0o700 })
    text = madeDir ? MADE_WITH_DIR : MADE
  }
  const after = withBlock(text, op.text, op.at)
  replaceFile(path, after, { mode: op.mode, ...(old === undefined ? {} : { old: old.stat }) })
  return { ok: true, restarted: restartIf(op.restart, before, after, context) }
}

function setBlock(op: Extract<BlockOp, { op: 'set-block' }>, path: string): FileResult {
  const old = readRegular(path)
  const found = old === undefined ? undefined : findBlock(old.text, op.token)
  if (old === undefined || found === undefined) throw new Error(`no block of ${op.token} in ${path}`)
  replaceFile(path, withBlockReplaced(old.text, found, op.text), { mode: 0o600, old: old.stat })
  return { ok: true }
}

function removeBlock(
  op: Extract<BlockOp, { op: 'remove-block' }>,
  path: string,
  context: AgentContext
): FileResult {
  const old = readRegular(path)
  const before = old?.text ?? ''
  const found = findBlock(before, op.token)
  if (old === undefined || found === undefined) return { ok: true, others: blockTokens(before).length }
  const after = withoutBlock(before, found, op.at)
  if (after === MADE || after === MADE_WITH_DIR) {
    unlinkSync(path)
    const dir = dirname(path)
    if (after === MADE_WITH_DIR && readdirSync(dir).length === 0) rmdirSync(dir)
  } else replaceFile(path, after, { mode: 0o600, old: old.stat })
  const now = readRegular(path)?.text ?? ''
  if (findBlock(now, op.token) !== undefined) throw new Error(`its block is still in ${path}`)
  return { ok: true, others: blockTokens(now).length, restarted: restartIf(op.restart, before, now, context) }
}

/** Runs `argv` when the settings of all blocks together changed: the nix-daemon reads nix.conf only at start. */
function restartIf(
  argv: string[] | undefined,
  before: string,
  after: string,
  context: AgentContext
): boolean {
  if (argv === undefined || settingsOf(before) === settingsOf(after)) return false
  const [command = 'true', ...args] = argv
  const { status } = spawnSync(command, args, { stdio: 'ignore', timeout: 120_000, env: context.env })
  if (status !== 0) throw new Error(`${argv.join(' ')} failed (exit ${String(status)})`)
  return true
}
