import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { applyPlan } from '../../../src/runner/apply.js'
import type { Plan, Step } from '../../../src/runner/plan.js'
import type { Journal, Undo } from '../../../src/runner/state.js'

let dir = ''
let stateFile = ''
const savedState = process.env.GITHUB_STATE
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'agent-apply-'))
  stateFile = join(dir, 'state')
  writeFileSync(stateFile, '')
  process.env.GITHUB_STATE = stateFile
})
afterEach(() => {
  if (savedState === undefined) delete process.env.GITHUB_STATE
  else process.env.GITHUB_STATE = savedState
  rmSync(dir, { recursive: true, force: true })
})

/** Every journal saved to the action's state, in order (core.saveState's `name<<delimiter` records). */
function journals(): unknown[] {
  const text = readFileSync(stateFile, 'utf8')
  return [...text.matchAll(/^journal<<(\S+)\n([\s\S]*?)\n\1$/gm)].map(match => JSON.parse(match[2] ?? ''))
}

const TOKEN = '0123456789abcdef0123456789abcdef'

function plan(steps: Step[]): Plan {
  return {
    token: TOKEN,
    path: 'single-user',
    asRoot: false,
    workDir: join(dir, 'work'),
    machinesFile: join(dir, 'work', 'machines'),
    machinesShared: false,
    builders: [],
    steps,
    nixConfig: '',
    warnings: []
  }
}

describe('applying a plan, with its undo journal', () => {
  it('records every undo before the batch, and then only those of the changes that were made', async () => {
    // A shared file another user replaced by a symlink: its block is refused, after the work directory was made.
    symlinkSync(join(dir, 'elsewhere'), join(dir, 'config'))
    const masters: Step = { kind: 'ssh-masters', aliases: ['a'], controlDir: join(dir, 'work') }
    const steps: Step[] = [
      masters,
      { kind: 'mkdir', path: join(dir, 'work') },
      { kind: 'write', path: join(dir, 'work', 'key'), mode: 0o600, content: 'k' },
      { kind: 'block', path: join(dir, 'config'), mode: 0o600, at: 'top', content: 'x' }
    ]
    await expect(applyPlan(plan(steps))).rejects.toThrow(/is a symlink/)
    const removeTree: Undo = { kind: 'remove-tree', path: join(dir, 'work') }
    const closeMasters: Undo = { kind: 'close-ssh-masters', aliases: ['a'], path: join(dir, 'work') }
    const before: Journal = {
      asRoot: false,
      token: TOKEN,
      undo: [
        closeMasters,
        removeTree,
        { kind: 'remove-block', path: join(dir, 'config'), token: TOKEN, at: 'top' }
      ]
    }
    expect(journals()).toEqual([before, { asRoot: false, token: TOKEN, undo: [closeMasters, removeTree] }])
  })

  it('records no removal of a directory it did not make', async () => {
    const steps: Step[] = [{ kind: 'mkdir', path: dir }]
    await expect(applyPlan(plan(steps))).rejects.toThrow(/EEXIST/)
    expect(journals()).toEqual([
      { asRoot: false, token: TOKEN, undo: [{ kind: 'remove-tree', path: dir }] },
      { asRoot: false, token: TOKEN, undo: [] }
    ])
  })
})
