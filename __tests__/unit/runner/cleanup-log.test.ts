import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { FileOp } from '../../../src/runner/file-agent.js'
import { cleanup } from '../../../src/runner/apply.js'
import { captureStdout, readLayout } from '../support/step-log.js'

/** The post step's log: its undo in one group, a change it could not undo a warning outside it. */
const refused = { path: '' }
vi.mock('../../../src/runner/file-agent.js', async importOriginal => ({
  ...(await importOriginal<typeof import('../../../src/runner/file-agent.js')>()),
  fileOps: vi.fn((ops: FileOp[]) =>
    Promise.resolve(
      ops.map(op =>
        'path' in op && op.path === refused.path ? { ok: false, error: 'permission denied' } : { ok: true }
      )
    )
  )
}))

const TOKEN = '0123456789abcdef0123456789abcdef'
const WORK_DIR = `/home/runner/.ssh/nix-offload-${TOKEN.slice(0, 6)}`
const JOURNAL = JSON.stringify({
  asRoot: false,
  token: TOKEN,
  undo: [
    { kind: 'remove-block', path: '/home/runner/.ssh/config', token: TOKEN, at: 'top' },
    { kind: 'remove-tree', path: WORK_DIR }
  ]
})

let stdout: ReturnType<typeof captureStdout>
beforeEach(() => {
  refused.path = ''
  process.env.STATE_journal = JOURNAL
  stdout = captureStdout()
})
afterEach(() => {
  stdout.restore()
  delete process.env.STATE_journal
})

describe('the log of the post step', () => {
  it('folds the undo into one group', async () => {
    await cleanup()
    const layout = readLayout(stdout.text())
    expect(layout.groups).toEqual([
      {
        title: 'Undo',
        lines: ['nix-offload: undid 2 change(s); the runner is as it was before the action.']
      }
    ])
    expect(layout.outside).toEqual([])
  })

  it('writes a change it could not undo as a warning outside the group', async () => {
    refused.path = '/home/runner/.ssh/config'
    await cleanup()
    const layout = readLayout(stdout.text())
    expect(layout.annotations).toEqual([
      '::warning::nix-offload could not undo its change to /home/runner/.ssh/config: permission denied'
    ])
    expect(layout.groups.map(group => group.title)).toEqual(['Undo'])
  })
})
