import * as core from '@actions/core'
import { posix } from 'node:path'
import { type ChildTracker, isRecord, type ProcessRecord, startTimeOf } from '../base/index.js'
import { StateKey } from '../inputs/index.js'
import type { ServiceManager } from './probe.js'

/** A service manager that can restart the nix-daemon: what the journal names, never a command line. */
export type Restart = Exclude<ServiceManager, 'none'>

/** The only commands the undo runs as root besides its file operations: one per service manager. */
export const RESTART_COMMANDS: Readonly<Record<Restart, readonly string[]>> = {
  systemd: ['systemctl', 'restart', 'nix-daemon.service'],
  launchd: ['launchctl', 'kickstart', '-k', 'system/org.nixos.nix-daemon']
}

/** One change main made, and how the post step takes it back. */
export type Undo =
  /** The action's own directory, removed whole. */
  | { kind: 'remove-tree'; path: string }
  /**
   * This job's block in a file other jobs may share, at its top or end; `restart` names how the daemon is restarted
   * when the blocks' settings together change (nix.conf, which the daemon reads only at start).
   */
  | { kind: 'remove-block'; path: string; token: string; at: 'top' | 'end'; restart?: Restart }
  /** The ssh-agent holding the private key (base/ssh-agent.ts), stopped, or emptied through its socket. */
  | { kind: 'stop-key-agent'; socket: string }
  /** Before the ssh config goes: ask each multiplexing master to exit, then stop any left over. */
  | { kind: 'close-ssh-masters'; aliases: string[]; path: string; configFile?: string }

export interface Journal {
  /** Whether the changes are root's (undone through sudo unless the action runs as root). */
  asRoot: boolean
  /** The job's 128-bit token, which names everything it changed; absent only with nothing to undo. */
  token?: string
  undo: Undo[]
}

/** Saved after every change, so a main step that dies half-way still leaves the post step a complete record. */
export function saveJournal(journal: Journal): void {
  core.saveState(StateKey.Journal, JSON.stringify(journal))
}

/**
 * The journal main saved, checked field by field (checkJournal); undefined when it saved none. Throws, saying why,
 * when the state is not a journal main could have written.
 */
export function loadJournal(sharedFiles: SharedFiles): Journal | undefined {
  const text = core.getState(StateKey.Journal)
  if (text === '') return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new Error('it is not JSON')
  }
  return checkJournal(parsed, sharedFiles)
}

/** The files a job may have put a block in, besides root's and the user's `~/.ssh/config`. */
export interface SharedFiles {
  nixConf: string
  /** The machines files the daemon may read: its default one, and the one its nix.conf names now. */
  machines: string[]
}

/**
 * The state is input: any process of the job can append to GITHUB_STATE, and a build log's `save-state` line once
 * could. So the post step, which runs the undo as root, takes only a journal whose every entry main could have
 * written for one job: one 128-bit token, its work directory `<absolute dir>/nix-offload-<token>` (whatever else
 * the path names, root then removes nothing but a directory of that name), blocks of that token in the shared files
 * only, a restart named from RESTART_COMMANDS beside nix.conf only, and that token's aliases. One entry that is not
 * voids the journal: the rest came from the same untrusted text.
 */
export function checkJournal(value: unknown, sharedFiles: SharedFiles): Journal {
  if (!isRecord(value) || !hasOnly(value, ['asRoot', 'token', 'undo'])) throw new Error('it is not a journal')
  const { asRoot, token, undo } = value
  if (typeof asRoot !== 'boolean' || !Array.isArray(undo)) throw new Error('it is not a journal')
  if (undo.length === 0) return { asRoot, undo: [] }
  if (typeof token !== 'string' || !TOKEN.test(token)) throw new Error('it has no valid token')
  const checked = undo.map((entry: unknown) => checkUndo(entry, { token, sharedFiles }))
  return { asRoot, token, undo: checked }
}

/** 128 random bits, in lowercase hex: what names every file and alias of one job. */
const TOKEN = /^[0-9a-f]{32}$/

function checkUndo(entry: unknown, job: { token: string; sharedFiles: SharedFiles }): Undo {
  const { token, sharedFiles } = job
  if (!isRecord(entry)) throw new Error('an entry is not an object')
  if (entry.kind === 'remove-tree' && hasOnly(entry, ['kind', 'path'])) {
    return { kind: 'remove-tree', path: workDir(entry.path, token) }
  }
  if (entry.kind === 'remove-block' && hasOnly(entry, ['kind', 'path', 'token', 'at', 'restart'])) {
    const { at, restart } = entry
    const path = blockFile(entry.path, sharedFiles)
    if (entry.token !== token) throw new Error(`the block in ${path} is not this job's`)
    if (at !== 'top' && at !== 'end') throw new Error(`the block in ${path} has no place`)
    if (restart === undefined) return { kind: 'remove-block', path, token, at }
    if ((restart !== 'systemd' && restart !== 'launchd') || path !== sharedFiles.nixConf)
      throw new Error(`the block in ${path} asks for a restart main never asks for`)
    return { kind: 'remove-block', path, token, at, restart }
  }
  if (entry.kind === 'stop-key-agent' && hasOnly(entry, ['kind', 'socket'])) {
    const socket = cleanPath(entry.socket)
    if (socket !== `${workDir(socket.slice(0, socket.lastIndexOf('/')), token)}/agent`)
      throw new Error('the key agent listens outside the work directory')
    return { kind: 'stop-key-agent', socket }
  }
  if (entry.kind === 'close-ssh-masters' && hasOnly(entry, ['kind', 'aliases', 'path', 'configFile'])) {
    const path = workDir(entry.path, token)
    const { aliases, configFile } = entry
    const alias = new RegExp(`^nix-offload-${token}-[1-9][0-9]{0,3}$`)
    if (!Array.isArray(aliases) || !aliases.every(name => typeof name === 'string' && alias.test(name)))
      throw new Error('the SSH masters have aliases that are not its own')
    if (configFile !== undefined && configFile !== `${path}/ssh_config`)
      throw new Error('the SSH masters have an ssh config outside the work directory')
    const undo: Undo = { kind: 'close-ssh-masters', aliases: aliases.map(String), path }
    return configFile === undefined ? undo : { ...undo, configFile }
  }
  throw new Error(`an entry of kind ${JSON.stringify(entry.kind)} (or its fields) is not one main writes`)
}

function hasOnly(entry: Record<string, unknown>, fields: string[]): boolean {
  return Object.keys(entry).every(field => fields.includes(field))
}

/** An absolute path, with no `.` or `..` step, no doubled or trailing slash, and no control character. */
function cleanPath(path: unknown): string {
  if (
    typeof path !== 'string' ||
    !path.startsWith('/') ||
    path.endsWith('/') ||
    posix.normalize(path) !== path ||
    path.split('/').includes('..') ||
    [...path].some(char => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f)
  )
    throw new Error(`${JSON.stringify(path)} is not an absolute, normalized path`)
  return path
}

/**
 * A job's own directory, `<absolute dir>/nix-offload-<the token's first 6 hex digits>` (work-dir.ts
 * `workDirIn`: the full token would make its SSH control sockets' paths too long).
 */
function workDir(value: unknown, token: string): string {
  const path = cleanPath(value)
  if (!path.endsWith(`/nix-offload-${token.slice(0, 6)}`) || path.lastIndexOf('/') === 0)
    throw new Error(`${path} is not a work directory of this job's`)
  return path
}

/** A file jobs share a block in: an `.ssh/config`, or one of Nix's (SharedFiles). */
function blockFile(value: unknown, sharedFiles: SharedFiles): string {
  const path = cleanPath(value)
  if (path.endsWith('/.ssh/config') || path === sharedFiles.nixConf || sharedFiles.machines.includes(path))
    return path
  throw new Error(`${path} is not a file the action puts a block in`)
}

/**
 * Records, in the state, each tracked child of main while it runs (base/process.ts), so that the post step can stop
 * those a killed main left behind. A child that ends is taken off the record again.
 */
export function childRecorder(): ChildTracker {
  const running = new Map<number, ProcessRecord>()
  const ended = new Set<number>()
  const save = (): void => core.saveState(StateKey.Children, JSON.stringify([...running.values()]))
  return {
    started: (pid, label) => {
      ended.delete(pid)
      void startTimeOf(pid).then(start => {
        if (start === undefined || ended.has(pid)) return
        running.set(pid, { pid, start, label })
        save()
      })
    },
    ended: pid => {
      ended.add(pid)
      if (running.delete(pid)) save()
    }
  }
}

/** The processes main recorded as running, checked: throws, saying why, when the state is not such a record. */
export function loadChildren(): ProcessRecord[] {
  const text = core.getState(StateKey.Children)
  if (text === '') return []
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new Error('it is not JSON')
  }
  if (!Array.isArray(parsed) || parsed.length > 64) throw new Error('it is not a list of processes')
  return parsed.map((entry: unknown): ProcessRecord => {
    if (!isRecord(entry) || !hasOnly(entry, ['pid', 'start', 'label']))
      throw new Error('an entry is not a process')
    const { pid, start, label } = entry
    // The label reaches the log: plain words only, no workflow command.
    if (
      typeof pid !== 'number' ||
      !Number.isSafeInteger(pid) ||
      pid <= 1 ||
      typeof start !== 'string' ||
      !/^[\w: ]{1,40}$/.test(start) ||
      typeof label !== 'string' ||
      !/^[a-z][a-z -]{0,39}$/.test(label)
    )
      throw new Error('an entry is not a process main records')
    return { pid, start, label }
  })
}
