import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  writeSync
} from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'

/**
 * What takes the kernel's lock on an open file: util-linux flock(1) on Linux, perl's flock on macOS (which has no
 * util-linux). Either locks the open file it inherits as fd 3 and exits; the lock belongs to that open file, which
 * the agent still holds, so it stays until the agent closes it or dies, killed or not.
 */
export type LockTool = 'flock' | 'perl'

export interface LockOptions {
  /** A directory only the agent's user can create entries in (`checkLockDir`). */
  dir: string
  waitMs: number
  /** Written into the lock file once taken, so that a job that waits too long can name who holds it. */
  holder: string
  tool?: LockTool
  env?: NodeJS.ProcessEnv
}

export interface HeldLock {
  /** The lock file. */
  path: string
  release: () => void
}

/** Root's locks in a directory of root's own that every job on the host sees; a user's in their home directory. */
export function defaultLockDir(uid = process.getuid?.() ?? 0, platform = process.platform): string {
  if (uid === 0) return platform === 'darwin' ? '/var/run/nix-offload' : '/run/nix-offload'
  return join(homedir(), '.cache', 'nix-offload', 'locks')
}

/**
 * Makes the lock directory (0700) if missing, and checks that it is a real directory of the agent's user that no one
 * else can write to: anyone who can create an entry there can plant a symlink where the agent opens its locks.
 */
export function checkLockDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  } catch {
    // Something is there already: judged below, like a directory that was.
  }
  let stat
  try {
    stat = lstatSync(dir)
  } catch (error) {
    throw new Error(
      `cannot make the lock directory ${dir}: ${error instanceof Error ? error.message : String(error)}`
    )
  }
  const uid = process.getuid?.() ?? 0
  const problem = stat.isSymbolicLink()
    ? 'a symlink'
    : !stat.isDirectory()
      ? 'not a directory'
      : stat.uid !== uid
        ? `owned by uid ${stat.uid}`
        : (stat.mode & 0o077) !== 0
          ? `open to others (mode ${(stat.mode & 0o777).toString(8)})`
          : undefined
  if (problem === undefined) return
  throw new Error(
    `the lock directory ${dir} is ${problem}, not a directory of uid ${uid}'s own with mode 0700, so another user ` +
      `may have planted it: remove it (as uid ${uid}: rm -rf ${dir}); nix-offload makes it again`
  )
}

/** The lock file for a shared file, named by a hash of its real path (which may be long, or contain anything). */
export function lockFileFor(dir: string, realPath: string): string {
  return join(dir, `${createHash('sha256').update(realPath).digest('hex').slice(0, 32)}.lock`)
}

/** Takes the lock on `realPath`, waiting at most `waitMs` for another job to let go of it. */
export function takeLock(realPath: string, options: LockOptions): HeldLock {
  checkLockDir(options.dir)
  const path = lockFileFor(options.dir, realPath)
  const fd = openLockFile(path)
  try {
    waitForLock(fd, path, realPath, options)
    const holder = Buffer.from(`${options.holder}, pid ${process.pid}, since ${new Date().toISOString()}\n`)
    ftruncateSync(fd, 0)
    writeSync(fd, holder, 0, holder.length, 0)
  } catch (error) {
    closeSync(fd)
    throw error
  }
  return { path, release: () => closeSync(fd) }
}

function openLockFile(path: string): number {
  let fd: number
  try {
    // O_NOFOLLOW: a symlink at the lock's path is an error (ELOOP), never followed to where it points.
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600)
  } catch (error) {
    throw new Error(
      `cannot open the lock file ${path}: ${error instanceof Error ? error.message : String(error)}`
    )
  }
  const stat = fstatSync(fd)
  if (!stat.isFile() || stat.uid !== (process.getuid?.() ?? 0)) {
    closeSync(fd)
    throw new Error(`the lock file ${path} is not a file of the agent's own user: remove it`)
  }
  return fd
}

/** Locks fd 3 of the tool, waiting at most the bound (perl: an alarm), and exits: 0 locked, 1 timed out. */
const PERL_LOCK =
  'open(my $f, ">&=", 3) or die "fd 3: $!\\n"; $SIG{ALRM} = sub { exit 1 }; alarm($ARGV[0]); ' +
  'flock($f, LOCK_EX) or exit($!{EINTR} ? 1 : 2); alarm(0); exit 0'

function waitForLock(fd: number, path: string, realPath: string, options: LockOptions): void {
  const tool = options.tool ?? (process.platform === 'darwin' ? 'perl' : 'flock')
  const seconds = String(options.waitMs / 1000)
  const [command, args]: [string, string[]] =
    tool === 'perl'
      ? ['perl', ['-MFcntl=:flock', '-MTime::HiRes=alarm', '-e', PERL_LOCK, seconds]]
      : ['flock', ['-w', seconds, '3']]
  const result = spawnSync(command, args, {
    stdio: ['ignore', 'ignore', 'pipe', fd],
    // The tool's own bound comes first; this one is for a tool that hangs.
    timeout: options.waitMs + 10_000,
    ...(options.env === undefined ? {} : { env: options.env })
  })
  if (result.status === 0) return
  if (result.status === 1)
    throw new Error(
      `another nix-offload job has held the lock on ${realPath} for over ${seconds} s ` +
        `(lock file ${path}, held by ${holderOf(fd)})`
    )
  const why = result.error?.message ?? (result.stderr.toString().trim() || `exit ${String(result.status)}`)
  throw new Error(`cannot lock ${path} with ${command}: ${why}`)
}

function holderOf(fd: number): string {
  const buffer = Buffer.alloc(512)
  const length = readSync(fd, buffer, 0, buffer.length, 0)
  return buffer.subarray(0, length).toString().trim() || 'a job that has not said who it is'
}
