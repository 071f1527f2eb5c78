import * as core from '@actions/core'
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { runCommand, startCompanion, trackChildren } from '../../../src/base/index.js'
import { childRecorder, cleanup } from '../../../src/runner/index.js'

vi.mock('@actions/core', async importOriginal => ({
  ...(await importOriginal<typeof import('@actions/core')>()),
  info: vi.fn(),
  warning: vi.fn(),
  saveState: vi.fn()
}))

/** /proc/<pid>/stat's field 22, the start time main records. */
function startOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? ''
}

/** Whether `pid` still runs (a zombie has ended). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

/** A child that main started and did not end: its end is never awaited, as when main is killed. */
function leftRunning(command: string, args: string[]): ChildProcess & { pid: number } {
  const child = spawn(command, args, { stdio: 'ignore' })
  const { pid } = child
  if (pid === undefined) throw new Error(`${command} did not start`)
  started.push(child)
  return Object.assign(child, { pid })
}

const started: ChildProcess[] = []
const infos = (): string[] => vi.mocked(core.info).mock.calls.map(([text]) => String(text))
const warnings = (): string[] => vi.mocked(core.warning).mock.calls.map(([text]) => String(text))
const savedRecords = (): unknown[] =>
  vi
    .mocked(core.saveState)
    .mock.calls.filter(([key]) => key === 'children')
    .map(([, value]) => JSON.parse(String(value)))

beforeEach(() => {
  vi.mocked(core.info).mockClear()
  vi.mocked(core.warning).mockClear()
  vi.mocked(core.saveState).mockClear()
})
afterEach(() => {
  trackChildren(undefined)
  delete process.env.STATE_children
  for (const child of started.splice(0)) child.kill('SIGKILL')
})

const waitFor = async (condition: () => boolean): Promise<void> => {
  for (let i = 0; i < 100 && !condition(); i++) await new Promise(resolve => setTimeout(resolve, 20))
}

describe('main records its long-running children', () => {
  it('with pid and start time while they run, and takes them off when they end', async () => {
    trackChildren(childRecorder())
    const companion = startCompanion('sh', ['-c', 'echo ready; exec cat >/dev/null'], 'ready', {
      track: 'ssh master'
    })
    expect(await companion.ready).toBeUndefined()
    await waitFor(() => savedRecords().length > 0)
    const [record] = savedRecords()
    expect(record).toEqual([{ pid: expect.any(Number), start: expect.any(String), label: 'ssh master' }])
    const pid = Number(/"pid":(\d+)/.exec(JSON.stringify(record))?.[1])
    const start = /"start":"(\d+)"/.exec(JSON.stringify(record))?.[1]
    expect(start).toBe(startOf(pid))
    expect(await companion.close(5_000)).toBe(true)
    expect(savedRecords().at(-1)).toEqual([])
  })

  it('only those started with a label', async () => {
    trackChildren(childRecorder())
    await runCommand('sleep', ['0.1'])
    await runCommand('sleep', ['0.1'], { track: 'nix build' })
    // Recorded while it ran, and off the record once it ended.
    expect(savedRecords()).toEqual([
      [{ pid: expect.any(Number), start: expect.any(String), label: 'nix build' }],
      []
    ])
  })
})

describe('the post step, after a main step that was killed', () => {
  it('stops what main left running, and its children, and says so', async () => {
    const sleep = leftRunning('sleep', ['30'])
    const shell = leftRunning('sh', ['-c', 'sleep 31 & wait'])
    await waitFor(() => readFileSync(`/proc/${shell.pid}/task/${shell.pid}/children`, 'utf8').trim() !== '')
    const grandchild = Number(readFileSync(`/proc/${shell.pid}/task/${shell.pid}/children`, 'utf8').trim())
    process.env.STATE_children = JSON.stringify([
      { pid: sleep.pid, start: startOf(sleep.pid), label: 'nix build' },
      { pid: shell.pid, start: startOf(shell.pid), label: 'ssh master' }
    ])
    await cleanup()
    await waitFor(() => !running(sleep.pid) && !running(shell.pid) && !running(grandchild))
    expect([running(sleep.pid), running(shell.pid), running(grandchild)]).toEqual([false, false, false])
    expect(infos()).toContain(
      `nix-offload: stopped 2 process(es) main left running: nix build (pid ${sleep.pid}), ssh master (pid ${shell.pid}).`
    )
    expect(warnings()).toEqual([])
  })

  it('leaves alone a process whose start time is not the recorded one (its pid used again)', async () => {
    const sleep = leftRunning('sleep', ['30'])
    process.env.STATE_children = JSON.stringify([
      { pid: sleep.pid, start: String(Number(startOf(sleep.pid)) - 1), label: 'nix build' }
    ])
    await cleanup()
    await new Promise(resolve => setTimeout(resolve, 200))
    expect(running(sleep.pid)).toBe(true)
    expect(infos().some(line => line.includes('stopped'))).toBe(false)
  })

  it.each([
    ['not JSON', '[{"pid":'],
    ['a label with a workflow command', JSON.stringify([{ pid: 4242, start: '1', label: '::error::x' }])],
    ['pid 1', JSON.stringify([{ pid: 1, start: '1', label: 'nix build' }])],
    ['a field main never writes', JSON.stringify([{ pid: 4242, start: '1', label: 'nix build', signal: 9 }])]
  ])('warns, and stops nothing, for a record that is %s', async (_, state) => {
    const sleep = leftRunning('sleep', ['30'])
    process.env.STATE_children = state.replace('4242', String(sleep.pid))
    await cleanup()
    expect(running(sleep.pid)).toBe(true)
    expect(warnings()).toHaveLength(1)
    expect(warnings()[0]).toMatch(/^nix-offload stopped no process/)
  })
})
