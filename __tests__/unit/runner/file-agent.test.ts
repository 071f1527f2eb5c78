import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runAgent } from '../../../src/agent/index.js'
import { takeLock } from '../../../src/agent/lock.js'
import { checkAll, type FileOp, fileOps, type FileResult } from '../../../src/runner/file-agent.js'
import { startAgent } from '../support/agent.js'

const b64 = (text: string): string => Buffer.from(text).toString('base64')

describe('file agent (in this process, as it runs under sudo)', () => {
  it('creates with a mode, rewrites in place keeping the mode, makes a directory, and reads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    const file = join(dir, 'config')
    writeFileSync(file, 'original', { mode: 0o640 })
    const ops: FileOp[] = [
      { op: 'read-if-exists', path: file },
      { op: 'read-if-exists', path: join(dir, 'missing') },
      { op: 'overwrite', path: file, data: b64('changed') },
      { op: 'create', path: join(dir, 'key'), data: b64('secret'), mode: 0o644 },
      { op: 'mkdir', path: join(dir, 'sub') }
    ]
    const results = await fileOps(ops, { viaSudo: false, keepGoing: false, lockDir: dir })
    checkAll(ops, results)
    expect(results[0]).toEqual({ ok: true, exists: true, data: b64('original') })
    expect(results[1]).toEqual({ ok: true, exists: false })
    expect(readFileSync(file, 'utf8')).toBe('changed')
    expect(statSync(file).mode & 0o777).toBe(0o640)
    expect(statSync(join(dir, 'key')).mode & 0o777).toBe(0o644)
    expect(statSync(join(dir, 'sub')).mode & 0o777).toBe(0o700)
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

const begin = (token: string): string => `# nix-offload ${token}: begin (added by the nix-offload action)`
const block = (token: string, line = `Host alias-${token}`): string =>
  `${begin(token)}\n${line}\n# nix-offload ${token}: end\n`

/** One job's whole life on a shared file: add its block, then take it away. */
function add(path: string, token: string, at: 'top' | 'end', extra: Partial<FileOp> = {}): FileOp {
  return { op: 'add-block', path, token, text: block(token), at, mode: 0o600, ...extra } as FileOp
}

/** The lock files stay (a kernel lock needs a lasting file): in a directory of their own, not the tests' files'. */
const LOCKS = mkdtempSync(join(tmpdir(), 'agent-locks-'))

async function run(ops: FileOp[]): Promise<FileResult[]> {
  const results = await fileOps(ops, { viaSudo: false, keepGoing: false, lockDir: LOCKS })
  checkAll(ops, results)
  return results
}

describe('file agent blocks: jobs sharing one file', () => {
  it('puts a block on top of a file without a final newline and takes exactly it away, keeping mode and owner', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    const file = join(dir, 'config')
    const original = 'ServerAliveInterval 5\nHost *\n  StrictHostKeyChecking no'
    writeFileSync(file, original, { mode: 0o644 })
    const inode = statSync(file).ino
    await run([add(file, 'aa', 'top')])
    expect(readFileSync(file, 'utf8')).toBe(block('aa') + original)
    // A new file renamed over the old one: a reader never sees half of it.
    expect(statSync(file).ino).not.toBe(inode)
    expect(statSync(file).mode & 0o777).toBe(0o644)
    const [removed] = await run([{ op: 'remove-block', path: file, token: 'aa', at: 'top' }])
    expect(removed).toMatchObject({ ok: true, others: 0 })
    expect(readFileSync(file, 'utf8')).toBe(original)
    expect(statSync(file).mode & 0o777).toBe(0o644)
    expect(readdirSync(dir)).toEqual(['config'])
  })

  it('adds at the end after the newline a file lacked, and takes that newline away with the block', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    const file = join(dir, 'nix.conf')
    writeFileSync(file, 'sandbox = true')
    await run([add(file, 'aa', 'end')])
    expect(readFileSync(file, 'utf8')).toBe(`sandbox = true\n${block('aa').trimEnd()}`)
    await run([{ op: 'remove-block', path: file, token: 'aa', at: 'end' }])
    expect(readFileSync(file, 'utf8')).toBe('sandbox = true')
  })

  it('never removes or revives another job’s block, whichever job ends first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    const file = join(dir, 'config')
    const original = 'Host x\n  User y\n'
    writeFileSync(file, original, { mode: 0o600 })
    await run([add(file, 'aa', 'top')])
    await run([add(file, 'bb', 'top')])
    // Crossing: the first job ends while the second still builds.
    const [first] = await run([{ op: 'remove-block', path: file, token: 'aa', at: 'top' }])
    expect(first?.others).toBe(1)
    expect(readFileSync(file, 'utf8')).toBe(block('bb') + original)
    // Removing it again (a post step run twice) changes nothing.
    await run([{ op: 'remove-block', path: file, token: 'aa', at: 'top' }])
    expect(readFileSync(file, 'utf8')).toBe(block('bb') + original)
    const [last] = await run([{ op: 'remove-block', path: file, token: 'bb', at: 'top' }])
    expect(last?.others).toBe(0)
    expect(readFileSync(file, 'utf8')).toBe(original)
  })

  it('refuses to add a block whose token is in the file already: not this job’s to take over, or away', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    const file = join(dir, 'config')
    writeFileSync(file, block('aa'))
    const ops = [add(file, 'aa', 'top')]
    const results = await fileOps(ops, { viaSudo: false, keepGoing: false, lockDir: LOCKS })
    expect(results).toEqual([{ ok: false, error: `a block with this job's token already exists in ${file}` }])
    expect(readFileSync(file, 'utf8')).toBe(block('aa'))
  })

  it('removes the file and directory it made with the last block, even when another job made the block last', async () => {
    const home = mkdtempSync(join(tmpdir(), 'agent-'))
    const file = join(home, '.ssh', 'config')
    await run([add(file, 'aa', 'top')])
    expect(statSync(join(home, '.ssh')).mode & 0o777).toBe(0o700)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    await run([add(file, 'bb', 'top')])
    await run([{ op: 'remove-block', path: file, token: 'aa', at: 'top' }])
    expect(existsSync(file)).toBe(true)
    await run([{ op: 'remove-block', path: file, token: 'bb', at: 'top' }])
    expect(existsSync(join(home, '.ssh'))).toBe(false)
    expect(readdirSync(home)).toEqual([])
  })

  it('keeps a directory that was there, and an empty file that was there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    await run([add(join(dir, 'made'), 'aa', 'end')])
    await run([{ op: 'remove-block', path: join(dir, 'made'), token: 'aa', at: 'end' }])
    writeFileSync(join(dir, 'empty'), '')
    await run([add(join(dir, 'empty'), 'aa', 'end')])
    await run([{ op: 'remove-block', path: join(dir, 'empty'), token: 'aa', at: 'end' }])
    expect(readdirSync(dir)).toEqual(['empty'])
    expect(readFileSync(join(dir, 'empty'), 'utf8')).toBe('')
  })

  it("replaces the lines inside its own block only (the canary's machines file)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    const file = join(dir, 'machines')
    writeFileSync(file, 'ssh://owner x86_64-linux\n')
    await run([add(file, 'aa', 'end'), add(file, 'bb', 'end')])
    await run([{ op: 'set-block', path: file, token: 'aa', text: block('aa', 'ssh-ng://one') }])
    expect(readFileSync(file, 'utf8')).toBe(
      `ssh://owner x86_64-linux\n\n${block('aa', 'ssh-ng://one').trimEnd()}\n${block('bb').trimEnd()}`
    )
  })

  it('restarts the daemon only when the settings of all blocks together change', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    const file = join(dir, 'nix.conf')
    writeFileSync(file, 'sandbox = true\n')
    const counter = join(dir, 'restarts')
    const restart = ['sh', '-c', `echo restart >> ${counter}`]
    const same = (token: string): FileOp => ({
      op: 'add-block',
      path: file,
      token,
      text: block(token, 'builders = @/etc/nix/nix-offload.machines'),
      at: 'end',
      mode: 0o644,
      restart
    })
    const restarted = async (ops: FileOp[]): Promise<boolean[]> =>
      (await run(ops)).map(result => result.restarted === true)
    expect(await restarted([same('aa')])).toEqual([true])
    // A second job with the same settings: the daemon already has them.
    expect(await restarted([same('bb')])).toEqual([false])
    expect(await restarted([{ op: 'remove-block', path: file, token: 'aa', at: 'end', restart }])).toEqual([
      false
    ])
    expect(await restarted([{ op: 'remove-block', path: file, token: 'bb', at: 'end', restart }])).toEqual([
      true
    ])
    expect(readFileSync(counter, 'utf8')).toBe('restart\nrestart\n')
    expect(readFileSync(file, 'utf8')).toBe('sandbox = true\n')
  })
})

describe('file agent locks', () => {
  it('waits for a live holder and fails, naming the lock and its holder, when it does not let go', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    const file = join(dir, 'config')
    const held = takeLock(file, { dir, waitMs: 1_000, holder: 'job ff' })
    try {
      const started = Date.now()
      const [result] = runAgent({
        ops: [add(file, 'aa', 'top')],
        keepGoing: false,
        lockDir: dir,
        lockWaitMs: 300
      })
      expect(Date.now() - started).toBeGreaterThanOrEqual(300)
      expect(result?.ok).toBe(false)
      expect(result?.error).toContain(`another nix-offload job has held the lock on ${file} for over 0.3 s`)
      expect(result?.error).toContain(`lock file ${held.path}, held by job ff, pid ${process.pid}, since `)
      expect(existsSync(file)).toBe(false)
    } finally {
      held.release()
    }
  })

  it('loses no block when many agents add and remove theirs on one file at the same moment', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    const lockDir = mkdtempSync(join(tmpdir(), 'agent-locks-'))
    const file = join(dir, 'config')
    const original = 'Host mine\n  User me'
    writeFileSync(file, original, { mode: 0o640 })
    const tokens = Array.from({ length: 8 }, (_, index) => `${index + 1}`.repeat(4))
    const agent = (ops: FileOp[]): Promise<FileResult[]> =>
      startAgent({ ops, keepGoing: false, lockDir, lockWaitMs: 30_000 }).done
    const added = await Promise.all(
      tokens.map(token => agent([add(file, token, tokens.indexOf(token) % 2 ? 'top' : 'end')]))
    )
    expect(added.flat().every(result => result.ok)).toBe(true)
    const during = readFileSync(file, 'utf8')
    for (const token of tokens) expect(during).toContain(block(token).trimEnd())
    const removed = await Promise.all(
      tokens.map((token, index) =>
        agent([{ op: 'remove-block', path: file, token, at: index % 2 ? 'top' : 'end' }])
      )
    )
    expect(removed.flat().every(result => result.ok)).toBe(true)
    expect(readFileSync(file, 'utf8')).toBe(original)
    expect(statSync(file).mode & 0o777).toBe(0o640)
    expect(readdirSync(dir)).toEqual(['config'])
  }, 30_000)
})
