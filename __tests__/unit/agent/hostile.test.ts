import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type FileOp, fileOps, type FileResult } from '../../../src/runner/file-agent.js'
import { asNobody } from '../support/agent.js'

const block = (token: string): string =>
  `# nix-offload ${token}: begin\nbuilders = @/etc/nix/${token}\n# nix-offload ${token}: end\n`
const add = (path: string, token: string): FileOp => ({
  op: 'add-block',
  path,
  token,
  text: block(token),
  at: 'end',
  mode: 0o644
})
const remove = (path: string, token: string): FileOp => ({ op: 'remove-block', path, token, at: 'end' })

/** A directory every local user may create entries in (as /tmp is), with one of nobody's own beside it. */
function sharedPlace(): { base: string; bait: string } {
  const base = mkdtempSync(join(tmpdir(), 'agent-hostile-'))
  chmodSync(base, 0o1777)
  const bait = join(base, 'bait')
  asNobody(`mkdir -m 777 ${bait}`)
  places.push(base)
  return { base, bait }
}
const places: string[] = []
const planted: string[] = []
afterEach(() => {
  for (const path of [...places.splice(0), ...planted.splice(0)])
    rmSync(path, { recursive: true, force: true })
})

/** Plants a symlink (into nobody's directory), a plain file or a directory of nobody's at `path`. */
function plant(kind: 'symlink' | 'file' | 'dir', path: string, bait: string): void {
  planted.push(path)
  if (kind === 'symlink') asNobody(`ln -s ${bait} ${path}`)
  else if (kind === 'file') asNobody(`echo planted > ${path}`)
  else asNobody(`mkdir -m 777 ${path}`)
}

async function timed(ops: FileOp[], lockDir: string): Promise<{ results: FileResult[]; ms: number }> {
  const started = Date.now()
  const results = await fileOps(ops, { viaSudo: false, keepGoing: false, lockDir })
  return { results, ms: Date.now() - started }
}

describe('the file agent among hostile local users', () => {
  for (const kind of ['symlink', 'file', 'dir'] as const) {
    it(`fails fast, naming it, when nobody planted a ${kind} where its lock directory goes`, async () => {
      const { base, bait } = sharedPlace()
      const target = join(base, 'nix.conf')
      writeFileSync(target, 'sandbox = true\n')
      const lockDir = join(base, 'nix-offload')
      plant(kind, lockDir, bait)
      const { results, ms } = await timed([add(target, 'aa')], lockDir)
      expect(results[0]?.ok).toBe(false)
      expect(results[0]?.error).toContain(`lock directory ${lockDir}`)
      expect(ms).toBeLessThan(2_000)
      expect(readdirSync(bait)).toEqual([])
      expect(readFileSync(target, 'utf8')).toBe('sandbox = true\n')
    })

    it(`ignores a ${kind} nobody planted at the temporary file beside the target and at the old /tmp lock`, async () => {
      const { base, bait } = sharedPlace()
      const target = join(base, 'nix.conf')
      writeFileSync(target, 'sandbox = true\n')
      plant(kind, `${target}.nix-offload-${process.pid}.tmp`, join(bait, 'beside'))
      plant(kind, join('/tmp', `nix-offload-lock-${encodeURIComponent(target)}`), join(bait, 'old-lock'))
      const lockDir = mkdtempSync(join(tmpdir(), 'agent-locks-'))
      places.push(lockDir)
      const { results, ms } = await timed([add(target, 'aa'), remove(target, 'aa')], lockDir)
      expect(results.map(result => result.error)).toEqual([undefined, undefined])
      expect(ms).toBeLessThan(2_000)
      expect(readdirSync(bait)).toEqual([])
      expect(readFileSync(target, 'utf8')).toBe('sandbox = true\n')
      for (const path of planted) expect(lstatSync(path).uid).toBe(65534)
    })
  }

  it('refuses a target that nobody replaced with a symlink, and writes nothing through it', async () => {
    const { base } = sharedPlace()
    const rootsOwn = mkdtempSync(join(tmpdir(), 'agent-root-'))
    places.push(rootsOwn)
    writeFileSync(join(rootsOwn, 'authorized_keys'), 'mine\n')
    const target = join(base, 'config')
    plant('symlink', target, join(rootsOwn, 'authorized_keys'))
    const lockDir = join(rootsOwn, 'locks')
    mkdirSync(lockDir, { mode: 0o700 })
    const { results, ms } = await timed([add(target, 'aa')], lockDir)
    expect(results[0]?.ok).toBe(false)
    expect(results[0]?.error).toMatch(new RegExp(`^${target} is a symlink`))
    expect(ms).toBeLessThan(2_000)
    expect(readFileSync(join(rootsOwn, 'authorized_keys'), 'utf8')).toBe('mine\n')
    expect(existsSync(join(rootsOwn, 'locks'))).toBe(true)
  })
})
