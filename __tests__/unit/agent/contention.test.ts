import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type FileOp, fileOps } from '../../../src/runner/file-agent.js'
import { startAgent } from '../support/agent.js'

const dirs: string[] = []
const strays: number[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  for (const pid of strays.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone already
    }
  }
})

function place(): { dir: string; file: string; lockDir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'agent-contention-'))
  dirs.push(dir)
  const lockDir = mkdtempSync(join(tmpdir(), 'agent-locks-'))
  dirs.push(lockDir)
  const file = join(dir, 'nix.conf')
  writeFileSync(file, 'sandbox = true\n')
  return { dir, file, lockDir }
}

/** A block whose one setting is its own, so that adding or removing it always runs `restart` under the lock. */
function op(kind: 'add' | 'remove', file: string, token: string, restart: string[]): FileOp {
  const text = `# nix-offload ${token}: begin\nsetting-${token} = 1\n# nix-offload ${token}: end\n`
  return kind === 'add'
    ? { op: 'add-block', path: file, token, text, at: 'end', mode: 0o644, restart }
    : { op: 'remove-block', path: file, token, at: 'end', restart }
}

describe('the file lock, with real processes', () => {
  it('lets one of 8 agents in at a time, taking and letting go in random order', async () => {
    const { dir, file, lockDir } = place()
    // The critical section: nobody else may be inside (mkdir is atomic), then a counter goes up by one.
    const inside = join(dir, 'inside')
    const counter = join(dir, 'counter')
    writeFileSync(counter, '0')
    const section = [
      'sh',
      '-c',
      `mkdir ${inside} || { echo overlap >> ${dir}/overlaps; exit 0; }; ` +
        `n=$(cat ${counter}); sleep 0.0$(( $$ % 5 )); echo $((n + 1)) > ${counter}; rmdir ${inside}`
    ]
    const tokens = Array.from({ length: 8 }, (_, index) => `${index}`.repeat(32))
    const jobs = tokens.map(async token => {
      await new Promise(resolve => setTimeout(resolve, Math.random() * 200))
      const added = await startAgent({
        ops: [op('add', file, token, section)],
        keepGoing: false,
        lockDir,
        lockWaitMs: 30_000
      }).done
      await new Promise(resolve => setTimeout(resolve, Math.random() * 200))
      const removed = await startAgent({
        ops: [op('remove', file, token, section)],
        keepGoing: false,
        lockDir,
        lockWaitMs: 30_000
      }).done
      return [...added, ...removed]
    })
    const results = (await Promise.all(jobs)).flat()
    expect(results.map(result => result.error)).toEqual(results.map(() => undefined))
    expect(existsSync(join(dir, 'overlaps'))).toBe(false)
    expect(readFileSync(counter, 'utf8').trim()).toBe('16')
    expect(readFileSync(file, 'utf8')).toBe('sandbox = true\n')
  }, 60_000)

  it('is free at once when its holder is killed with SIGKILL', async () => {
    const { dir, file, lockDir } = place()
    const started = join(dir, 'started')
    const hold = ['sh', '-c', `echo $$ > ${started}.pid; touch ${started}; exec sleep 30`]
    const holder = startAgent({
      ops: [op('add', file, 'a'.repeat(32), hold)],
      keepGoing: false,
      lockDir,
      lockWaitMs: 30_000
    })
    holder.done.catch(() => undefined)
    while (!existsSync(started)) await new Promise(resolve => setTimeout(resolve, 10))
    strays.push(Number(readFileSync(`${started}.pid`, 'utf8')))
    const exited = new Promise(resolve => holder.done.then(resolve, resolve))
    holder.kill()
    await exited
    const freed = Date.now()
    const results = await fileOps([op('add', file, 'b'.repeat(32), ['true'])], {
      viaSudo: false,
      keepGoing: false,
      lockDir
    })
    expect(results[0]?.error).toBeUndefined()
    expect(Date.now() - freed).toBeLessThan(500)
  }, 60_000)
})
