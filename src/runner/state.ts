import * as core from '@actions/core'
import { StateKey } from '../inputs/index.js'

/** One change main made, and how the post step takes it back. */
export type Undo =
  /** The action's own directory, removed whole. */
  | { kind: 'remove-tree'; path: string }
  /**
   * This job's block in a file other jobs may share, at its top or end; `restart` runs when the blocks' settings
   * together change (nix.conf, which the daemon reads only at start).
   */
  | { kind: 'remove-block'; path: string; token: string; at: 'top' | 'end'; restart?: string[] }
  /** The ssh-agent holding the private key (base/ssh-agent.ts), stopped, or emptied through its socket. */
  | { kind: 'stop-key-agent'; socket: string }
  /** Before the ssh config goes: ask each multiplexing master to exit, then stop any left over. */
  | { kind: 'close-ssh-masters'; aliases: string[]; path: string; configFile?: string }

export interface Journal {
  /** Whether the changes are root's (undone through sudo unless the action runs as root). */
  asRoot: boolean
  undo: Undo[]
}

/** Saved after every change, so a main step that dies half-way still leaves the post step a complete record. */
export function saveJournal(journal: Journal): void {
  core.saveState(StateKey.Journal, JSON.stringify(journal))
}

export function loadJournal(): Journal | undefined {
  const text = core.getState(StateKey.Journal)
  if (text === '') return undefined
  return JSON.parse(text) as Journal
}
