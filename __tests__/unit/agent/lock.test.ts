import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  lchownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  checkLockDir,
  defaultLockDir,
  lockFileFor,
  type LockTool,
  takeLock
} from '../../../src/agent/lock.js'
import { NOBODY } from '../support/agent.js'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})
function temporary(): string {
  const dir = mkdtempSync(join(tmpdir(), 'agent-lock-'))
  dirs.push(dir)
  return dir
}

describe('the lock directory', () => {
  it("is root's own under /run (/var/run on macOS), and a user's under their home", () => {
    expect(defaultLockDir(0, 'linux')).toBe('/run/nix-offload')
    expect(defaultLockDir(0, 'darwin')).toBe('/var/run/nix-offload')
    expect(defaultLockDir(1001, 'linux')).toMatch(/\/\.cache\/nix-offload\/locks$/)
  })

  it('is made with mode 0700, and one open to others is refused with the fix', () => {
    const dir = join(temporary(), 'locks')
    checkLockDir(dir)
    expect(readdirSync(dir)).toEqual([])
    chmodSync(dir, 0o755)
    expect(() => checkLockDir(dir)).toThrow(
      `the lock directory ${dir} is open to others (mode 755), not a directory of uid 0's own with mode 0700, ` +
        `so another user may have planted it: remove it (as uid 0: rm -rf ${dir}); nix-offload makes it again`
    )
  })
})

describe('a lock file someone else planted', () => {
  const file = '/etc/nix/nix.conf'
  it('as a symlink is never followed', () => {
    const dir = temporary()
    const lockDir = join(dir, 'locks')
    mkdirSync(lockDir, { mode: 0o700 })
    const path = lockFileFor(lockDir, file)
    symlinkSync(join(dir, 'victim'), path)
    lchownSync(path, NOBODY, NOBODY)
    expect(() => takeLock(file, { dir: lockDir, waitMs: 5_000, holder: 'job aa' })).toThrow(
      new RegExp(`^cannot open the lock file ${path}: ELOOP`)
    )
    expect(existsSync(join(dir, 'victim'))).toBe(false)
  })

  it('as a file or a directory of another user is refused at once', () => {
    const lockDir = temporary()
    const path = lockFileFor(lockDir, file)
    writeFileSync(path, '')
    lchownSync(path, NOBODY, NOBODY)
    expect(() => takeLock(file, { dir: lockDir, waitMs: 5_000, holder: 'job aa' })).toThrow(
      `the lock file ${path} is not a file of the agent's own user: remove it`
    )
    rmSync(path)
    mkdirSync(path)
    expect(() => takeLock(file, { dir: lockDir, waitMs: 5_000, holder: 'job aa' })).toThrow(/EISDIR/)
  })
})

describe.each<LockTool>(['flock', 'perl'])('the kernel lock, taken with %s', tool => {
  it('makes a second taker wait its bound, naming the holder, and is free at once when let go', () => {
    const dir = temporary()
    const held = takeLock('/shared', { dir, waitMs: 1_000, holder: 'job aa', tool })
    const started = Date.now()
    expect(() => takeLock('/shared', { dir, waitMs: 300, holder: 'job bb', tool })).toThrow(
      `another nix-offload job has held the lock on /shared for over 0.3 s (lock file ${held.path}, held by job aa, pid ${process.pid}, since `
    )
    expect(Date.now() - started).toBeGreaterThanOrEqual(290)
    expect(Date.now() - started).toBeLessThan(2_000)
    held.release()
    const again = Date.now()
    takeLock('/shared', { dir, waitMs: 5_000, holder: 'job bb', tool }).release()
    expect(Date.now() - again).toBeLessThan(500)
  })

  it('is held by the open file, not the tool that took it: a process that inherits nothing cannot break it', () => {
    const dir = temporary()
    const held = takeLock('/shared', { dir, waitMs: 1_000, holder: 'job aa', tool })
    const other = spawnSync('flock', ['-n', held.path, 'true'])
    expect(other.status).toBe(1)
    held.release()
    expect(spawnSync('flock', ['-n', held.path, 'true']).status).toBe(0)
  })
})
