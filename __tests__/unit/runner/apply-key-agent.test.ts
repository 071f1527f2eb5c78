import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parsePrivateKey } from '../../../src/inputs/keys.js'
import type { Builder } from '../../../src/inputs/settings.js'
import { configureBuilders } from '../../../src/inputs/index.js'
import { applyPlan } from '../../../src/runner/apply.js'
import { undoJournal } from '../../../src/runner/apply.js'
import { makeStorePlan } from '../../../src/runner/plan.js'
import { builderWith, settingsWith } from '../support/settings.js'

const BUILDER: Builder = builderWith()

/** Every file under `dir`, recursively, that is a regular file. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return filesUnder(path)
    return entry.isFile() ? [path] : []
  })
}

function agentList(socket: string): { code: number; output: string } {
  try {
    const output = execFileSync('ssh-add', ['-l'], {
      env: { PATH: process.env.PATH ?? '', SSH_AUTH_SOCK: socket },
      stdio: ['ignore', 'pipe', 'pipe']
    }).toString()
    return { code: 0, output }
  } catch (error) {
    const status = typeof error === 'object' && error !== null && 'status' in error ? error.status : 1
    return { code: typeof status === 'number' ? status : 1, output: '' }
  }
}

/** Whether a process whose command line names `socket` still runs (Linux's /proc). */
function agentRunning(socket: string): boolean {
  return readdirSync('/proc')
    .filter(name => /^\d+$/.test(name))
    .some(pid => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(socket)
      } catch {
        return false
      }
    })
}

async function until(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (condition()) return true
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return condition()
}

describe.runIf(process.platform === 'linux')(
  'the remote-store key in an ssh-agent of the step (applyPlan, undoJournal)',
  () => {
    const keys = mkdtempSync(join(tmpdir(), 'nix-offload-keys-'))
    const temp = mkdtempSync(join(tmpdir(), 'nix-offload-agent-'))
    const state = join(temp, 'state')
    let savedState: string | undefined
    let fingerprint = ''
    let keyText = ''

    beforeAll(() => {
      savedState = process.env.GITHUB_STATE
      process.env.GITHUB_STATE = state
      writeFileSync(state, '')
      execFileSync('ssh-keygen', [
        '-q',
        '-t',
        'ed25519',
        '-N',
        '',
        '-C',
        'agent-test',
        '-f',
        join(keys, 'id')
      ])
      keyText = readFileSync(join(keys, 'id'), 'utf8')
      fingerprint =
        execFileSync('ssh-keygen', ['-lf', join(keys, 'id.pub')])
          .toString()
          .split(' ')[1] ?? ''
    })

    afterAll(() => {
      if (savedState === undefined) delete process.env.GITHUB_STATE
      else process.env.GITHUB_STATE = savedState
      rmSync(keys, { recursive: true, force: true })
      rmSync(temp, { recursive: true, force: true })
    })

    it('holds the key that no file of the work directory holds, and stops with the undo', async () => {
      const privateKey = parsePrivateKey(keyText)
      if (typeof privateKey === 'string') throw new Error(privateKey)
      const plan = makeStorePlan(
        settingsWith({ builders: [BUILDER], privateKey }),
        configureBuilders([BUILDER], 'abc123'),
        'abc123',
        temp
      )
      const socket = join(plan.workDir, 'agent')
      const journal = await applyPlan(plan)
      try {
        const listed = agentList(socket)
        expect(listed.code).toBe(0)
        expect(listed.output).toContain(fingerprint)
        expect(statSync(socket).isSocket()).toBe(true)
        const files = filesUnder(plan.workDir)
        expect(files.length).toBeGreaterThan(0)
        expect(files.filter(file => readFileSync(file, 'utf8').includes('PRIVATE KEY'))).toEqual([])
        expect(readFileSync(join(plan.workDir, 'key.pub'), 'utf8')).toBe(`${privateKey.publicLine}\n`)
        // ssh takes its key from the agent: the config names no other.
        expect(agentRunning(socket)).toBe(true)
        const config = readFileSync(join(plan.workDir, 'ssh_config'), 'utf8')
        expect(config).toContain(`IdentityAgent "${socket}"`)
      } finally {
        const outcome = await undoJournal(journal)
        expect(outcome.failures).toBe(0)
      }
      expect(existsSync(plan.workDir)).toBe(false)
      expect(agentList(socket).code).toBe(2)
      expect(await until(() => !agentRunning(socket), 5_000)).toBe(true)
    })
  }
)
