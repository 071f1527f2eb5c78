import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  type AgentContext,
  agentProgram,
  checkAll,
  type FileOp,
  fileOps,
  type FileResult,
  runFileOps
} from '../../../src/runner/file-agent.js'

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

async function run(dir: string, ops: FileOp[]): Promise<FileResult[]> {
  const results = await fileOps(ops, { viaSudo: false, keepGoing: false, lockDir: dir })
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
    await run(dir, [add(file, 'aa', 'top')])
    expect(readFileSync(file, 'utf8')).toBe(block('aa') + original)
    // A new file renamed over the old one: a reader never sees half of it.
    expect(statSync(file).ino).not.toBe(inode)
    expect(statSync(file).mode & 0o777).toBe(0o644)
    const [removed] = await run(dir, [{ op: 'remove-block', path: file, token: 'aa', at: 'top' }])
    expect(removed).toMatchObject({ ok: true, others: 0 })
    expect(readFileSync(file, 'utf8')).toBe(original)
    expect(statSync(file).mode & 0o777).toBe(0o644)
    expect(readdirSync(dir)).toEqual(['config'])
  })

  it('adds at the end after the newline a file lacked, and takes that newline away with the block', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    const file = join(dir, 'nix.conf')
    writeFileSync(file, 'sandbox = true')
    await run(dir, [add(file, 'aa', 'end')])
    expect(readFileSync(file, 'utf8')).toBe(`sandbox = true\n${block('aa').trimEnd()}`)
    await run(dir, [{ op: 'remove-block', path: file, token: 'aa', at: 'end' }])
    expect(readFileSync(file, 'utf8')).toBe('sandbox = true')
  })

  it('never removes or revives another job’s block, whichever job ends first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    const file = join(dir, 'config')
    const original = 'Host x\n  User y\n'
    writeFileSync(file, original, { mode: 0o600 })
    await run(dir, [add(file, 'aa', 'top')])
    await run(dir, [add(file, 'bb', 'top')])
    // Crossing: the first job ends while the second still builds.
    const [first] = await run(dir, [{ op: 'remove-block', path: file, token: 'aa', at: 'top' }])
    expect(first?.others).toBe(1)
    expect(readFileSync(file, 'utf8')).toBe(block('bb') + original)
    // Removing it again (a post step run twice) changes nothing.
    await run(dir, [{ op: 'remove-block', path: file, token: 'aa', at: 'top' }])
    expect(readFileSync(file, 'utf8')).toBe(block('bb') + original)
    const [last] = await run(dir, [{ op: 'remove-block', path: file, token: 'bb', at: 'top' }])
    expect(last?.others).toBe(0)
    expect(readFileSync(file, 'utf8')).toBe(original)
  })

  it('removes the file and directory it made with the last block, even when another job made the block last', async () => {
    const home = mkdtempSync(join(tmpdir(), 'agent-'))
    const file = join(home, '.ssh', 'config')
    await run(home, [add(file, 'aa', 'top')])
    expect(statSync(join(home, '.ssh')).mode & 0o777).toBe(0o700)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    await run(home, [add(file, 'bb', 'top')])
    await run(home, [{ op: 'remove-block', path: file, token: 'aa', at: 'top' }])
    expect(existsSync(file)).toBe(true)
    await run(home, [{ op: 'remove-block', path: file, token: 'bb', at: 'top' }])
    expect(existsSync(join(home, '.ssh'))).toBe(false)
    expect(readdirSync(home)).toEqual([])
  })

  it('keeps a directory that was there, and an empty file that was there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    await run(dir, [add(join(dir, 'made'), 'aa', 'end')])
    await run(dir, [{ op: 'remove-block', path: join(dir, 'made'), token: 'aa', at: 'end' }])
    writeFileSync(join(dir, 'empty'), '')
    await run(dir, [add(join(dir, 'empty'), 'aa', 'end')])
    await run(dir, [{ op: 'remove-block', path: join(dir, 'empty'), token: 'aa', at: 'end' }])
    expect(readdirSync(dir)).toEqual(['empty'])
    expect(readFileSync(join(dir, 'empty'), 'utf8')).toBe('')
  })

  it("replaces the lines inside its own block only (the canary's machines file)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    const file = join(dir, 'machines')
    writeFileSync(file, 'ssh://owner x86_64-linux\n')
    await run(dir, [add(file, 'aa', 'end'), add(file, 'bb', 'end')])
    await run(dir, [{ op: 'set-block', path: file, token: 'aa', text: block('aa', 'ssh-ng://one') }])
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
      (await run(dir, ops)).map(result => result.restarted === true)
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
  const context = (dir: string, lockWaitMs: number): AgentContext => ({
    files: fs,
    spawn: (command, args, options) => spawnSync(command, args, options),
    lockDir: dir,
    lockWaitMs
  })
  const lockFile = (dir: string, path: string): string =>
    join(dir, `nix-offload-lock-${encodeURIComponent(path)}`)

  it('waits for a live holder and fails, naming the lock, when it does not let go', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    const file = join(dir, 'config')
    writeFileSync(lockFile(dir, file), String(process.pid))
    const started = Date.now()
    const [result] = runFileOps(context(dir, 300), [add(file, 'aa', 'top')], false)
    expect(Date.now() - started).toBeGreaterThanOrEqual(300)
    expect(result?.ok).toBe(false)
    expect(result?.error).toMatch(/another nix-offload job has held .*nix-offload-lock-.* for over 0.3 s/)
    expect(existsSync(file)).toBe(false)
  })

  it('breaks the lock of a holder that is gone, and lets go of its own', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    const file = join(dir, 'config')
    const gone = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim()
    writeFileSync(lockFile(dir, file), gone)
    // Older than the 2 s a fresh lock is always respected for.
    const past = new Date(Date.now() - 5_000)
    fs.utimesSync(lockFile(dir, file), past, past)
    const [result] = runFileOps(context(dir, 300), [add(file, 'aa', 'top')], false)
    expect(result?.ok).toBe(true)
    expect(readdirSync(dir).sort()).toEqual(['config'])
  })

  it('loses no block when many agents add and remove theirs on one file at the same moment', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'))
    const file = join(dir, 'config')
    const original = 'Host mine\n  User me'
    writeFileSync(file, original, { mode: 0o640 })
    const tokens = Array.from({ length: 8 }, (_, index) => `${index + 1}`.repeat(4))
    const agent = (ops: FileOp[]): Promise<FileResult[]> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['-e', agentProgram()], { stdio: ['pipe', 'pipe', 'inherit'] })
        let out = ''
        child.stdout.on('data', chunk => (out += String(chunk)))
        child.on('error', reject)
        child.on('close', () => resolve(JSON.parse(out) as FileResult[]))
        child.stdin.end(JSON.stringify({ ops, keepGoing: false, lockDir: dir, lockWaitMs: 30_000 }))
      })
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
  })
})
