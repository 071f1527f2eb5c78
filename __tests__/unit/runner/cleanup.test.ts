import * as core from '@actions/core'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { FileOp } from '../../../src/runner/file-agent.js'
import { cleanup } from '../../../src/runner/apply.js'

vi.mock('@actions/core', async importOriginal => ({
  ...(await importOriginal<typeof import('@actions/core')>()),
  info: vi.fn(),
  warning: vi.fn()
}))

const handed: FileOp[][] = []
vi.mock('../../../src/runner/file-agent.js', async importOriginal => ({
  ...(await importOriginal<typeof import('../../../src/runner/file-agent.js')>()),
  fileOps: vi.fn((ops: FileOp[]) => {
    handed.push(ops)
    return Promise.resolve(ops.map(() => ({ ok: true, others: 0 })))
  })
}))

const TOKEN = '0123456789abcdef0123456789abcdef'
/** A work directory is named by the token's first 6 hex digits (runner/plan.ts). */
const DIR_NAME = `nix-offload-${TOKEN.slice(0, 6)}`
const WORK_DIR = `/home/runner/.ssh/${DIR_NAME}`
const ROOT_DIR = `/root/.ssh/${DIR_NAME}`

/** A journal as main saves it for a daemon-config plan: root's ssh config, its work dir, the machines file, nix.conf. */
function daemonJournal(): { asRoot: boolean; token: string; undo: Record<string, unknown>[] } {
  return {
    asRoot: true,
    token: TOKEN,
    undo: [
      { kind: 'remove-block', path: '/root/.ssh/config', token: TOKEN, at: 'top' },
      { kind: 'remove-tree', path: ROOT_DIR },
      { kind: 'close-ssh-masters', aliases: [`nix-offload-${TOKEN}-1`], path: ROOT_DIR },
      { kind: 'remove-block', path: '/etc/nix/nix-offload.machines', token: TOKEN, at: 'end' },
      { kind: 'remove-block', path: '/etc/nix/nix.conf', token: TOKEN, at: 'end', restart: 'systemd' }
    ]
  }
}

async function postWith(state: string): Promise<FileOp[]> {
  process.env.STATE_journal = state
  await cleanup()
  return handed.flat()
}

const warnings = (): string[] => vi.mocked(core.warning).mock.calls.map(([text]) => String(text))

beforeEach(() => {
  handed.length = 0
  vi.mocked(core.warning).mockClear()
  vi.mocked(core.info).mockClear()
})
afterEach(() => {
  delete process.env.STATE_journal
})

describe('the post step, given the journal main saved', () => {
  it('rebuilds each operation from checked fields: the restart from its table, an escaped pkill pattern', async () => {
    const ops = await postWith(JSON.stringify(daemonJournal()))
    expect(warnings()).toEqual([])
    expect(ops).toEqual([
      {
        op: 'remove-block',
        path: '/etc/nix/nix.conf',
        token: TOKEN,
        at: 'end',
        restart: ['systemctl', 'restart', 'nix-daemon.service']
      },
      { op: 'remove-block', path: '/etc/nix/nix-offload.machines', token: TOKEN, at: 'end' },
      { op: 'attempt', argv: ['ssh', '-O', 'stop', `nix-offload-${TOKEN}-1`] },
      { op: 'attempt', argv: ['pkill', '-f', '--', `/root/\\.ssh/${DIR_NAME}/[c]m-`] },
      { op: 'remove-tree', path: ROOT_DIR },
      { op: 'remove-block', path: '/root/.ssh/config', token: TOKEN, at: 'top' }
    ])
  })

  it("takes a block in Nix's default machines file, which a daemon reads when nix.conf names none", async () => {
    const journal = {
      asRoot: true,
      token: TOKEN,
      undo: [{ kind: 'remove-block', path: '/etc/nix/machines', token: TOKEN, at: 'end' }]
    }
    const ops = await postWith(JSON.stringify(journal))
    expect(warnings()).toEqual([])
    expect(ops).toEqual([{ op: 'remove-block', path: '/etc/nix/machines', token: TOKEN, at: 'end' }])
  })

  it("takes the remote-store plan's ssh config only from its own work dir", async () => {
    const ops = await postWith(
      JSON.stringify({
        asRoot: false,
        token: TOKEN,
        undo: [
          { kind: 'remove-tree', path: `/tmp/runner/${DIR_NAME}` },
          {
            kind: 'close-ssh-masters',
            aliases: [`nix-offload-${TOKEN}-1`, `nix-offload-${TOKEN}-2`],
            path: `/tmp/runner/${DIR_NAME}`,
            configFile: `/tmp/runner/${DIR_NAME}/ssh_config`
          }
        ]
      })
    )
    expect(warnings()).toEqual([])
    expect(ops[0]).toEqual({
      op: 'attempt',
      argv: ['ssh', '-F', `/tmp/runner/${DIR_NAME}/ssh_config`, '-O', 'stop', `nix-offload-${TOKEN}-1`]
    })
    expect(ops).toHaveLength(4)
  })

  const tampered: [string, (journal: ReturnType<typeof daemonJournal>) => unknown][] = [
    ['rm -rf /', j => ({ ...j, undo: [...j.undo, { kind: 'remove-tree', path: '/' }] })],
    [
      'a tree outside its own work dir',
      j => ({ ...j, undo: [{ kind: 'remove-tree', path: '/home/runner' }] })
    ],
    [
      'a work dir with ..',
      j => ({ ...j, undo: [{ kind: 'remove-tree', path: `/home/runner/../../${DIR_NAME}` }] })
    ],
    [
      'a work dir reached through ..',
      j => ({ ...j, undo: [{ kind: 'remove-tree', path: `${WORK_DIR}/../../..` }] })
    ],
    ['a relative work dir', j => ({ ...j, undo: [{ kind: 'remove-tree', path: DIR_NAME }] })],
    [
      'a work dir with a newline',
      j => ({ ...j, undo: [{ kind: 'remove-tree', path: `/tmp/a\n/${DIR_NAME}` }] })
    ],
    [
      'a restart argv',
      j => ({
        ...j,
        undo: [
          {
            kind: 'remove-block',
            path: '/etc/nix/nix.conf',
            token: TOKEN,
            at: 'end',
            restart: ['sh', '-c', 'touch /tmp/pwned']
          }
        ]
      })
    ],
    [
      'a restart of an unknown name',
      j => ({
        ...j,
        undo: [{ kind: 'remove-block', path: '/etc/nix/nix.conf', token: TOKEN, at: 'end', restart: 'sh' }]
      })
    ],
    [
      'a restart beside a file other than nix.conf',
      j => ({
        ...j,
        undo: [
          { kind: 'remove-block', path: '/root/.ssh/config', token: TOKEN, at: 'top', restart: 'systemd' }
        ]
      })
    ],
    [
      'a block in a file no job shares',
      j => ({ ...j, undo: [{ kind: 'remove-block', path: '/etc/shadow', token: TOKEN, at: 'end' }] })
    ],
    [
      'a block path with ..',
      j => ({
        ...j,
        undo: [{ kind: 'remove-block', path: '/etc/nix/../shadow/.ssh/config', token: TOKEN, at: 'end' }]
      })
    ],
    [
      'an empty path for close-ssh-masters',
      j => ({ ...j, undo: [{ kind: 'close-ssh-masters', aliases: [`nix-offload-${TOKEN}-1`], path: '' }] })
    ],
    [
      'an ssh option for an alias',
      j => ({
        ...j,
        undo: [{ kind: 'close-ssh-masters', aliases: ['-oProxyCommand=touch /tmp/pwned'], path: ROOT_DIR }]
      })
    ],
    [
      'an ssh config outside the work dir',
      j => ({
        ...j,
        undo: [
          {
            kind: 'close-ssh-masters',
            aliases: [`nix-offload-${TOKEN}-1`],
            path: ROOT_DIR,
            configFile: '/tmp/evil_config'
          }
        ]
      })
    ],
    ['a token of the wrong length', j => ({ ...j, token: 'abc123' })],
    ['no token', j => ({ asRoot: j.asRoot, undo: j.undo })],
    [
      'a block of another token',
      j => ({ ...j, undo: [{ kind: 'remove-block', path: '/root/.ssh/config', token: 'abc123', at: 'top' }] })
    ],
    [
      "another job's work dir",
      j => ({ ...j, undo: [{ kind: 'remove-tree', path: '/root/.ssh/nix-offload-ffffff' }] })
    ],
    [
      'a key agent outside the work dir',
      j => ({ ...j, undo: [{ kind: 'stop-key-agent', socket: '/run/user/1000/agent' }] })
    ],
    [
      'a token in capitals',
      j => ({
        ...j,
        token: TOKEN.toUpperCase(),
        undo: [{ kind: 'remove-block', path: '/root/.ssh/config', token: TOKEN.toUpperCase(), at: 'top' }]
      })
    ],
    [
      'two tokens in one journal',
      j => ({
        ...j,
        undo: [
          ...j.undo,
          { kind: 'remove-block', path: '/root/.ssh/config', token: 'f'.repeat(32), at: 'top' }
        ]
      })
    ],
    ['an unknown kind', j => ({ ...j, undo: [...j.undo, { kind: 'run', argv: ['id'] }] })],
    ['an unknown field', j => ({ ...j, undo: [{ ...j.undo[0], argv: ['id'] }] })],
    ['asRoot that is not a boolean', j => ({ ...j, asRoot: 'yes' })],
    ['undo that is not a list', j => ({ ...j, undo: {} })]
  ]

  it.each(tampered)('voids the whole journal and warns for %s', async (_, tamper) => {
    const ops = await postWith(JSON.stringify(tamper(daemonJournal())))
    expect(ops).toEqual([])
    expect(warnings()).toHaveLength(1)
    expect(warnings()[0]).toMatch(/^nix-offload did not undo anything: the state its main step saved/)
  })

  it('warns, and undoes nothing, for a state that is not JSON', async () => {
    const ops = await postWith('{"asRoot":true,"undo":[{"kind":"remove-tree","path":"/"}')
    expect(ops).toEqual([])
    expect(warnings()).toHaveLength(1)
  })
})
