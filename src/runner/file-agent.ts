import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type FileOp, type FileResult, runAgent } from '../agent/index.js'
import { childEnvironment, runChecked } from '../base/index.js'

export { newToken } from '../agent/index.js'
export type { FileOp, FileResult } from '../agent/index.js'

/** Long enough for another job's whole batch, daemon restart included. */
const LOCK_WAIT_MS = 180_000

/**
 * Runs the operations as root through one `sudo -n node` of the agent's own bundle, or in this process when no sudo is
 * needed. `lockDir` is for tests; the agent keeps its locks in a directory of its user's own.
 */
export async function fileOps(
  ops: FileOp[],
  options: { viaSudo: boolean; keepGoing: boolean; lockDir?: string }
): Promise<FileResult[]> {
  if (ops.length === 0) return []
  const request = {
    ops,
    keepGoing: options.keepGoing,
    lockWaitMs: LOCK_WAIT_MS,
    ...(options.lockDir === undefined ? {} : { lockDir: options.lockDir })
  }
  // In this process, children would inherit the step's inputs; under sudo, its env_reset drops them.
  if (!options.viaSudo) return runAgent(request, { env: childEnvironment(process.env) })
  const output = await runChecked('sudo', ['-n', process.execPath, agentBundle()], {
    input: JSON.stringify(request),
    // sudo itself may wait (a PAM module, a password prompt it cannot show): bounded like everything else.
    timeoutMs: 120_000 + LOCK_WAIT_MS
  })
  return parseResults(output.toString())
}

/** The agent's bundle, dist/agent/index.js, beside the running one (dist/main or dist/post). */
function agentBundle(): string {
  // Built with path.join, not `new URL(…, import.meta.url)`, which the bundler would take for an asset to copy.
  const path = join(dirname(fileURLToPath(import.meta.url)), '..', 'agent', 'index.js')
  if (!existsSync(path))
    throw new Error(`the file agent's bundle ${path} is missing: rebuild dist/ (npm run bundle)`)
  return path
}

export function parseResults(text: string): FileResult[] {
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
