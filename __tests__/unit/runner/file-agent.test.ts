import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkAll, type FileOp, fileOps } from '../../../src/runner/file-agent.js'

const b64 = (text: string): string => Buffer.from(text).toString('base64')

describe('file agent (in this process, as it runs under sudo)', () => {
  it('creates with a mode, rewrites in place keeping the mode, copies a backup back, and reads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    const file = join(dir, 'config')
    writeFileSync(file, 'original', { mode: 0o640 })
    const ops: FileOp[] = [
      { op: 'read-if-exists', path: file },
      { op: 'read-if-exists', path: join(dir, 'missing') },
      { op: 'create', path: join(dir, 'backup'), data: b64('original'), mode: 0o600 },
      { op: 'overwrite', path: file, data: b64('changed') },
      { op: 'create', path: join(dir, 'key'), data: b64('secret'), mode: 0o644 },
      { op: 'mkdir', path: join(dir, 'sub') }
    ]
    const results = await fileOps(ops, { viaSudo: false, keepGoing: false })
    checkAll(ops, results)
    expect(results[0]).toEqual({ ok: true, exists: true, data: b64('original') })
    expect(results[1]).toEqual({ ok: true, exists: false })
    expect(readFileSync(file, 'utf8')).toBe('changed')
    expect(statSync(file).mode & 0o777).toBe(0o640)
    expect(statSync(join(dir, 'key')).mode & 0o777).toBe(0o644)
    expect(statSync(join(dir, 'backup')).mode & 0o777).toBe(0o600)
    expect(statSync(join(dir, 'sub')).mode & 0o777).toBe(0o700)

    await fileOps([{ op: 'copy', from: join(dir, 'backup'), to: file }], { viaSudo: false, keepGoing: false })
    expect(readFileSync(file, 'utf8')).toBe('original')
    expect(statSync(file).mode & 0o777).toBe(0o640)
  })

  it('refuses to create over an existing file, stops there unless told to keep going, and says which', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    writeFileSync(join(dir, 'taken'), 'x')
    const ops: FileOp[] = [
      { op: 'create', path: join(dir, 'taken'), data: b64('y'), mode: 0o600 },
      { op: 'create', path: join(dir, 'after'), data: b64('z'), mode: 0o600 }
    ]
    const stopped = await fileOps(ops, { viaSudo: false, keepGoing: false })
    expect(stopped).toHaveLength(1)
    expect(() => checkAll(ops, stopped)).toThrow(/^cannot create .*taken: EEXIST/)
    const all = await fileOps(ops, { viaSudo: false, keepGoing: true })
    expect(all.map(result => result.ok)).toEqual([false, true])
  })

  it('removes an empty directory, leaves a non-empty one, and takes a missing one as done', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    mkdirSync(join(dir, 'empty'))
    mkdirSync(join(dir, 'full'))
    writeFileSync(join(dir, 'full', 'f'), '')
    const results = await fileOps(
      ['empty', 'full', 'missing'].map((name): FileOp => ({ op: 'remove-empty-dir', path: join(dir, name) })),
      { viaSudo: false, keepGoing: true }
    )
    expect(results.map(result => result.ok)).toEqual([true, false, true])
    expect(execFileSync('ls', [dir]).toString().trim()).toBe('full')
  })

  it('runs an attempt whose failure is fine', async () => {
    const results = await fileOps(
      [
        { op: 'attempt', argv: ['false'] },
        { op: 'attempt', argv: ['true'] }
      ],
      { viaSudo: false, keepGoing: true }
    )
    expect(results).toEqual([{ ok: false }, { ok: true }])
  })
})
