import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { type FileOp, type FileResult, parseResults } from '../../../src/runner/file-agent.js'

export const NOBODY = 65534

/** Runs a shell script as another user of the runner (nobody), as a hostile local user would. */
export function asNobody(script: string): void {
  const result = spawnSync('sh', ['-c', script], { uid: NOBODY, gid: NOBODY, cwd: '/', encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`as nobody: ${script}: ${result.stderr}`)
}

export interface AgentRequest {
  ops: FileOp[]
  keepGoing: boolean
  lockDir: string
  lockWaitMs: number
}

const ROOT = join(import.meta.dirname, '..', '..', '..')

/** The agent as its own process from its entry point, as sudo starts its bundle: request on stdin, results on stdout. */
export function startAgent(request: AgentRequest): {
  pid: number | undefined
  kill: () => void
  done: Promise<FileResult[]>
} {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/agent/main.ts')], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit']
  })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
  const done = new Promise<FileResult[]>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', code =>
      code === 0 ? resolve(parseResults(out)) : reject(new Error(`agent exited ${code}`))
    )
  })
  child.stdin.end(JSON.stringify(request))
  return { pid: child.pid, kill: () => child.kill('SIGKILL'), done }
}
