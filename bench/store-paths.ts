/**
 * What a run left in a store, read from that store's own database (its ValidPaths table, the same on every Nix of the
 * lab), not from anything the action reports. Every derivation, source and output of a benchmark run carries that
 * run's nonce in its name, so the rows with the nonce are exactly the paths that became valid during the run, however
 * many lab tests add paths to the same store at the same time.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type CommandResult,
  hostPath,
  type Lab,
  type LabBuilder,
  runCommandAs,
  runOnHost
} from '../__tests__/lab/harness.js'

export interface StorePath {
  path: string
  narSize: number
  /** Built or added in this store; a path copied in from another store is not (Nix clears it on copy). */
  ultimate: boolean
}

/** The runner's store database, as the host sees it. */
export function runnerDatabase(lab: Lab): string {
  return hostPath(lab, '/nix/var/nix/db/db.sqlite')
}

/** A builder's store database: its /nix is a directory of the host. */
export function builderDatabase(b: LabBuilder): string {
  return b.storeDir.replace(/\/store$/, '/var/nix/db/db.sqlite')
}

/** The valid paths whose names contain `nonce`, from the database file `database`, newest first. */
export async function pathsWith(database: string, nonce: string): Promise<StorePath[]> {
  if (!/^[0-9a-f]+$/.test(nonce)) throw new Error(`not a nonce: ${nonce}`)
  return validPaths(database, `path like '%${nonce}%'`)
}

/**
 * The valid ones of `paths`, from the database file `database`, newest first: for a path whose name has no nonce, as
 * a flake's source (always named `source`).
 */
export async function pathsAmong(database: string, paths: string[]): Promise<StorePath[]> {
  const bad = paths.find(path => !/^\/nix\/store\/[0-9a-z]{32}-[A-Za-z0-9+._?=-]+$/.test(path))
  if (bad !== undefined) throw new Error(`not a store path: ${bad}`)
  if (paths.length === 0) return []
  return validPaths(database, `path in (${paths.map(path => `'${path}'`).join(', ')})`)
}

async function validPaths(database: string, where: string): Promise<StorePath[]> {
  const result = await runOnHost([
    // Not -readonly: a read-only connection cannot open a WAL database whose -shm file the daemon has not left
    // behind ("database is locked"). It only reads; the busy timeout waits out a daemon's write.
    'sqlite3',
    '-cmd',
    '.timeout 10000',
    '-separator',
    '\t',
    database,
    `select path, narSize, coalesce(ultimate, 0) from ValidPaths where ${where} order by id desc`
  ])
  if (result.code !== 0) throw new Error(`sqlite3 ${database} failed: ${result.stderr}`)
  return result.stdout
    .split('\n')
    .filter(line => line !== '')
    .map(line => {
      const [path = '', narSize = '0', ultimate = '0'] = line.split('\t')
      return { path, narSize: Number(narSize), ultimate: ultimate === '1' }
    })
}

export function totalBytes(paths: StorePath[]): number {
  return paths.reduce((sum, path) => sum + path.narSize, 0)
}

/**
 * Deletes the paths with any of `nonces` from the runner's store (as root, so liveness is ignored: the action may
 * leave out-links that root them). One run at a time, since Nix stops at the first path it cannot delete (a daemon
 * worker's temporary root). Warns instead of failing: a benchmark's figures do not depend on it.
 */
export async function deleteFromRunner(lab: Lab, nonces: string[]): Promise<void> {
  for (const id of nonces) await deletePathsFromRunner(lab, await pathsWith(runnerDatabase(lab), id))
}

/** Deletes `paths` from the runner's store, as deleteFromRunner does. */
export async function deletePathsFromRunner(lab: Lab, paths: StorePath[]): Promise<void> {
  if (paths.length === 0) return
  const result = await runCommandAs(lab, 'root', [
    'nix-store',
    '--delete',
    '--ignore-liveness',
    ...paths.map(p => p.path)
  ])
  if (result.code !== 0)
    process.stderr.write(`warning: could not clean the runner's store: ${result.stderr.split('\n').at(-2)}\n`)
}

/**
 * Deletes the paths with any of `nonces` from builder `b`'s store, one run at a time, through its daemon as its
 * (trusted) user over ssh. Warns instead of failing.
 */
export async function deleteFromBuilder(lab: Lab, b: LabBuilder, nonces: string[]): Promise<void> {
  for (const id of nonces) await deletePathsFromBuilder(lab, b, await pathsWith(builderDatabase(b), id))
}

/** Deletes `paths` (newest first) from builder `b`'s store, as deleteFromBuilder does. */
export async function deletePathsFromBuilder(lab: Lab, b: LabBuilder, paths: StorePath[]): Promise<void> {
  if (paths.length === 0) return
  // The remote command is one argument of the builder's shell, which the kernel caps at 128 KiB. Referrers first,
  // so that no chunk deletes a path that a later one still refers to (a copy need not register paths in order).
  const ordered = await referrersFirst(builderDatabase(b), paths)
  for (let start = 0; start < ordered.length; start += 500)
    await deleteOnBuilder(lab, b, ordered.slice(start, start + 500))
}

/** `paths` ordered so that each comes before every path it refers to, from the store's Refs table. */
async function referrersFirst(database: string, paths: StorePath[]): Promise<StorePath[]> {
  const result = await runOnHost([
    'sqlite3',
    '-cmd',
    '.timeout 10000',
    '-separator',
    '\t',
    database,
    'select a.path, b.path from Refs join ValidPaths a on a.id = Refs.referrer join ValidPaths b on b.id = Refs.reference'
  ])
  if (result.code !== 0) throw new Error(`sqlite3 ${database} failed: ${result.stderr}`)
  const byPath = new Map(paths.map(p => [p.path, p]))
  const referrers = new Map<string, number>(paths.map(p => [p.path, 0]))
  const references = new Map<string, string[]>()
  for (const line of result.stdout.split('\n')) {
    const [from = '', to = ''] = line.split('\t')
    if (from === to || !byPath.has(from) || !byPath.has(to)) continue
    referrers.set(to, (referrers.get(to) ?? 0) + 1)
    references.set(from, [...(references.get(from) ?? []), to])
  }
  const ready = paths.filter(p => referrers.get(p.path) === 0)
  const ordered: StorePath[] = []
  for (let next = ready.shift(); next !== undefined; next = ready.shift()) {
    ordered.push(next)
    for (const to of references.get(next.path) ?? []) {
      const left = (referrers.get(to) ?? 1) - 1
      referrers.set(to, left)
      const path = byPath.get(to)
      if (left === 0 && path !== undefined) ready.push(path)
    }
  }
  return ordered.length === paths.length ? ordered : paths
}

async function deleteOnBuilder(lab: Lab, b: LabBuilder, paths: StorePath[]): Promise<void> {
  const result = await onBuilder(lab, b, ['nix-store', '--delete', ...paths.map(p => p.path)])
  if (result.code !== 0)
    process.stderr.write(
      `warning: could not clean builder ${b.id}'s store: ${result.stderr.split('\n').at(-2)}\n`
    )
}

/** Runs `argv` on builder `b` as its user over ssh from the host, with the lab's client key and `b`'s host key pinned. */
export async function onBuilder(lab: Lab, b: LabBuilder, argv: string[]): Promise<CommandResult> {
  const dir = mkdtempSync(join(tmpdir(), 'nix-offload-bench-ssh-'))
  writeFileSync(join(dir, 'known_hosts'), `[${b.host}]:${b.port} ${b.hostPublicKey}\n`)
  try {
    return await runOnHost([
      'ssh',
      '-F',
      '/dev/null',
      '-i',
      lab.clientKey,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
      '-p',
      String(b.port),
      `${b.user}@${b.host}`,
      ...argv
    ])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
