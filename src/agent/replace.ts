import { randomBytes } from 'node:crypto'
import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  lstatSync,
  openSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  type Stats,
  unlinkSync,
  writeSync
} from 'node:fs'
import { basename, dirname, join } from 'node:path'

/**
 * The path a shared file is edited at: its directory's real path and its own name. The file itself must not be a
 * symlink, and neither it nor its directory may be in the Nix store: nix-darwin and home-manager make nix.conf a link
 * into the store, which root must never rewrite, and renaming a new file over a link's target would change a file
 * that is not the one named.
 */
export function editablePath(path: string, storeDir = '/nix/store'): string {
  const stat = lstatOrUndefined(path)
  const dir = dirname(path)
  const real = join(existsSync(dir) ? realpathSync(dir) : dir, basename(path))
  if (stat?.isSymbolicLink() === true) {
    const target = readlinkSync(path)
    const inStore = `${realpathOr(path)}/`.startsWith(`${storeDir}/`)
    throw new Error(
      `${path} is a symlink (to ${target}${inStore ? ', in the Nix store' : ''}), which nix-offload does not write ` +
        `through. ${AVOID}`
    )
  }
  if (`${real}/`.startsWith(`${storeDir}/`))
    throw new Error(`${path} is in the Nix store (${real}). ${AVOID}`)
  if (stat !== undefined && !stat.isFile()) throw new Error(`${path} is not a regular file`)
  return real
}

const AVOID =
  'The strategy that needs no file of root’s avoids it: `strategy: remote-store`, or make the runner user ' +
  'trusted; or make it a regular file that root owns.'

/** A regular file's text and status, read without following a symlink; undefined when there is none. */
export function readRegular(path: string): { text: string; stat: Stats } | undefined {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW)
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return undefined
    throw error
  }
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile()) throw new Error(`${path} is not a regular file`)
    return { text: readFileSync(fd, 'utf8'), stat }
  } finally {
    closeSync(fd)
  }
}

/**
 * Writes a new file beside `path` and renames it over, so a reader sees the old file or the new one whole. It keeps
 * the old file's owner and mode (`mode` for a new file). The temporary file's name is random and opened with O_EXCL
 * and O_NOFOLLOW, so nothing another user planted beside the file is written through.
 */
export function replaceFile(path: string, text: string, options: { mode: number; old?: Stats }): void {
  const temporary = `${path}.nix-offload-${randomBytes(8).toString('hex')}.tmp`
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW
  const fd = openSync(temporary, flags, 0o600)
  try {
    const data = Buffer.from(text)
    let offset = 0
    while (offset < data.length) offset += writeSync(fd, data, offset, data.length - offset)
    if (options.old !== undefined) keepOwner(fd, options.old)
    fchmodSync(fd, options.old === undefined ? options.mode : options.old.mode & 0o7777)
    fsyncSync(fd)
  } catch (error) {
    closeSync(fd)
    unlinkSync(temporary)
    throw error
  }
  closeSync(fd)
  try {
    if (lstatOrUndefined(path)?.isSymbolicLink() === true) throw new Error(`${path} became a symlink`)
    renameSync(temporary, path)
  } catch (error) {
    unlinkSync(temporary)
    throw error
  }
}

function keepOwner(fd: number, old: Stats): void {
  try {
    fchownSync(fd, old.uid, old.gid)
  } catch (error) {
    // Only root can give a file away; a user's own files are theirs already.
    if (process.getuid?.() === 0) throw error
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path)
  } catch {
    return undefined
  }
}

function realpathOr(path: string): string {
  try {
    return realpathSync(path)
  } catch {
    return path
  }
}
