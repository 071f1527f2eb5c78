import * as core from '@actions/core'
import fc from 'fast-check'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { safeLine } from '../../../src/base/safe-text.js'
import { StepLog } from '../../../src/base/step-log.js'
import { captureStdout, readLayout } from '../support/step-log.js'

let stdout: ReturnType<typeof captureStdout>
beforeEach(() => {
  stdout = captureStdout()
})
afterEach(() => {
  stdout.restore()
  vi.restoreAllMocks()
})

describe('StepLog: a group per phase', () => {
  it("opens a phase's group with its first line, ends it with the next phase, and leaves a silent phase out", () => {
    const log = new StepLog()
    log.begin('Preflight')
    log.line('✓ nixbuilder@b1:22')
    log.begin('Configure')
    log.begin('Build')
    log.line('hello> building')
    log.end()
    log.line('after')
    expect(readLayout(stdout.text())).toEqual({
      groups: [
        { title: 'Preflight', lines: ['✓ nixbuilder@b1:22'] },
        { title: 'Build', lines: ['hello> building'] }
      ],
      outside: ['after'],
      annotations: []
    })
  })

  it("writes every annotation outside the groups; the phase's next line opens its group again, continued", () => {
    const log = new StepLog()
    log.annotate('notice', 'before any line')
    log.begin('Configure')
    log.annotate('warning', 'no line yet: no group to end')
    log.line('Configuring for root')
    log.annotate('warning', 'a plan warning', { title: 'nix-offload' })
    log.annotate('error', 'and another')
    log.line('Builder → b1')
    log.end()
    const layout = readLayout(stdout.text())
    expect(layout.groups.map(group => group.title)).toEqual(['Configure', 'Configure (continued)'])
    expect(layout.annotations).toEqual([
      '::notice::before any line',
      '::warning::no line yet: no group to end',
      '::warning title=nix-offload::a plan warning',
      '::error::and another'
    ])
  })

  it('ends the group of a phase that throws, and the error line comes after it', async () => {
    const log = new StepLog()
    const failing = log.within('Build', () => {
      log.line('hello> building')
      return Promise.reject(new Error('nix build failed'))
    })
    await expect(failing).rejects.toThrow('nix build failed')
    log.end()
    log.annotate('error', 'nix build failed', { title: 'nix-offload' })
    const layout = readLayout(stdout.text())
    expect(layout.groups).toEqual([{ title: 'Build', lines: ['hello> building'] }])
    expect(layout.annotations).toEqual(['::error title=nix-offload::nix build failed'])
  })

  it('writes the job summary only once the open group has ended', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nix-offload-step-log-'))
    const file = join(dir, 'summary.md')
    writeFileSync(file, '')
    vi.stubEnv('GITHUB_STEP_SUMMARY', file)
    const printedBefore: string[] = []
    const write = core.summary.write.bind(core.summary)
    vi.spyOn(core.summary, 'write').mockImplementation(options => {
      printedBefore.push(stdout.text())
      return write(options)
    })
    try {
      const log = new StepLog()
      log.begin('Proof')
      log.line('Proof: 1 derivation(s) built on nixbuilder@b1:22.')
      await log.summary('✅ **Confirmed**')
      log.end()
      expect(readFileSync(file, 'utf8')).toContain('✅ **Confirmed**')
      expect(printedBefore).toHaveLength(1)
      expect(readLayout(printedBefore[0] ?? '').groups.map(group => group.title)).toEqual(['Proof'])
    } finally {
      vi.unstubAllEnvs()
      core.summary.emptyBuffer()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('keeps a title on one line: a builder label cannot start a command from it', () => {
    const log = new StepLog()
    log.begin('Build on x\n::error::forged')
    log.line('a line')
    log.end()
    const layout = readLayout(stdout.text())
    expect(layout.groups.map(group => group.title)).toEqual(['Build on x\\n:\u200b:error:\u200b:forged'])
    expect(layout.annotations).toEqual([])
  })
})

describe('StepLog: the relayed build log', () => {
  it("opens the phase's group before it stops commands, and holds group changes and annotations until the resume", () => {
    const log = new StepLog()
    log.begin('Build')
    const resume = log.stopCommands()
    log.line('hello> ::error::from the build')
    log.annotate('warning', 'came during the relay')
    log.begin('Copy back from nixbuilder@b1:22')
    log.line('printed while commands are stopped')
    resume()
    log.line('Copying 1 output(s) back')
    log.end()
    const text = stdout.text()
    const layout = readLayout(text)
    expect(layout.groups.map(group => group.title)).toEqual(['Build', 'Copy back from nixbuilder@b1:22'])
    expect(layout.groups[0]?.lines.slice(1, -1)).toEqual([
      'hello> ::error::from the build',
      'printed while commands are stopped'
    ])
    expect(layout.annotations).toEqual(['::warning::came during the relay'])
    expect(text.indexOf('::group::Build')).toBeLessThan(text.indexOf('::stop-commands::'))
  })

  it('resumes once, when the last of two relays that share the stop ends', () => {
    const log = new StepLog()
    log.begin('Build')
    const first = log.stopCommands()
    const second = log.stopCommands()
    first()
    first()
    log.annotate('warning', 'held')
    expect(stdout.text()).not.toContain('::warning')
    second()
    log.end()
    const text = stdout.text()
    expect(text.match(/::stop-commands::/g)).toHaveLength(1)
    expect(readLayout(text).annotations).toEqual(['::warning::held'])
  })

  it('prints a layout GitHub shows as it is meant, whatever the phases print and in whatever order', () => {
    const step = fc.oneof(
      fc.constantFrom('Preflight', 'Build', 'Proof').map(title => ({ kind: 'begin' as const, title })),
      fc.constant({ kind: 'end' as const }),
      fc.string().map(text => ({ kind: 'line' as const, text: safeLine(text) })),
      fc.constantFrom('error', 'warning', 'notice').map(kind => ({ kind: 'annotate' as const, level: kind })),
      fc.constant({ kind: 'relay' as const }),
      fc.constant({ kind: 'resume' as const })
    )
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), steps => {
        const capture = captureStdout()
        try {
          const log = new StepLog()
          const relays: (() => void)[] = []
          for (const next of steps) {
            if (next.kind === 'begin') log.begin(next.title)
            else if (next.kind === 'end') log.end()
            else if (next.kind === 'line') log.line(next.text)
            else if (next.kind === 'annotate') log.annotate(next.level, 'found')
            else if (next.kind === 'relay') relays.push(log.stopCommands())
            else relays.pop()?.()
          }
          for (const resume of relays) resume()
          log.end()
          const layout = readLayout(capture.text())
          return layout.annotations.length === steps.filter(next => next.kind === 'annotate').length
        } finally {
          capture.restore()
        }
      })
    )
  })
})
