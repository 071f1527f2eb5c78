import { emptyAgentCommand, startKeyAgent, stopKeyAgent } from '../base/index.js'
import type { Settings } from '../inputs/index.js'
import type { FileOp } from './file-agent.js'
import type { Undo } from './state.js'

/**
 * The work directory: the action's own directory (mode 0700), made by the plan's batch and removed whole by the post
 * step, with the files inside it, which need no undo of their own, and the ssh-agent that holds the private key.
 */

/** Create the action's own directory (mode 0700); the post step removes it whole. */
export interface MkdirStep {
  kind: 'mkdir'
  path: string
}

/** A new file inside the action's own directory. */
export interface WriteStep {
  kind: 'write'
  path: string
  mode: number
  content: string
}

/**
 * An ssh-agent of the step's own listening on `socket` (in the action's own directory), given `key` on its stdin once
 * the files are written.
 */
export interface KeyAgentStep {
  kind: 'key-agent'
  socket: string
  key: string
}

export type WorkDirStep = MkdirStep | WriteStep | KeyAgentStep

type WorkDirUndo = Extract<Undo, { kind: 'remove-tree' | 'stop-key-agent' }>

/**
 * The work directory of a plan under `parent`. Its name is the token's first 6 hex digits, since the control sockets
 * inside must fit a Unix socket path (`<dir>/cm-<40 hex>.<16>`, 107 bytes at most; speculative.ts's `tempDirectory`
 * counts on 6). A clash with a directory that is there already fails the mkdir, whose undo is then not recorded.
 */
export function workDirIn(parent: string, token: string): string {
  return `${parent.replace(/\/$/, '')}/nix-offload-${token.slice(0, 6)}`
}

/** Where ssh finds the private key: a key file, or with an agent only its public half, which picks the key from it. */
export interface KeyFiles {
  identityFile: string
  /** The socket of the agent that holds the private key (base/ssh-agent.ts). */
  identityAgent?: string
}

/**
 * The work directory and the key in it. A daemon connects as root, whose 0700 ~/.ssh keeps a key file from the runner
 * user. When the runner user's own nix connects (`viaAgent`), every `--impure` evaluation and build it runs can read
 * that user's files, and could send a key file out: the key then lives only in an ssh-agent of the step's, fed on
 * stdin, and the ssh config names the agent and the key's public half, which picks that key from it.
 */
export function workDirWithKey(
  settings: Settings,
  workDir: string,
  viaAgent: boolean
): { files: KeyFiles; steps: WorkDirStep[] } {
  const mkdir: MkdirStep = { kind: 'mkdir', path: workDir }
  if (!viaAgent) {
    const identityFile = `${workDir}/key`
    return {
      files: { identityFile },
      steps: [mkdir, { kind: 'write', path: identityFile, mode: 0o600, content: settings.privateKey.text }]
    }
  }
  const identityFile = `${workDir}/key.pub`
  const identityAgent = `${workDir}/agent`
  return {
    files: { identityFile, identityAgent },
    steps: [
      mkdir,
      { kind: 'write', path: identityFile, mode: 0o644, content: `${settings.privateKey.publicLine}\n` },
      { kind: 'key-agent', socket: identityAgent, key: settings.privateKey.text }
    ]
  }
}

/** A step's file operation and the undo it records; `ownDir` is the work directory once a step has made it. */
export function workDirChange(
  step: WorkDirStep,
  ownDir: string | undefined
): { op?: FileOp; undo?: WorkDirUndo } {
  switch (step.kind) {
    case 'mkdir':
      return { op: { op: 'mkdir', path: step.path }, undo: { kind: 'remove-tree', path: step.path } }
    case 'write': {
      // A file of its own needs no undo of its own: its directory goes whole.
      if (ownDir === undefined || !step.path.startsWith(`${ownDir}/`))
        throw new Error(`the plan writes ${step.path} outside the action's own directory`)
      const data = Buffer.from(step.content).toString('base64')
      return { op: { op: 'create', path: step.path, data, mode: step.mode } }
    }
    case 'key-agent':
      // Started once the batch has made the directory its socket lives in (startKeyAgents).
      return { undo: { kind: 'stop-key-agent', socket: step.socket } }
  }
}

/** Starts the plan's key agents, once the batch has made the work directory. */
export async function startKeyAgents(agents: KeyAgentStep[]): Promise<void> {
  for (const agent of agents) await startKeyAgent(agent.socket, agent.key)
}

/**
 * Stops an agent that this process started. False when it did not (a main step that ended without stopping it): its
 * undo's file operation then empties it.
 */
export function stopOwnKeyAgent(undo: Extract<Undo, { kind: 'stop-key-agent' }>): Promise<boolean> {
  return stopKeyAgent(undo.socket)
}

/** The file operations that take the work directory back. */
export function workDirUndoOps(undo: WorkDirUndo): FileOp[] {
  if (undo.kind === 'remove-tree') return [{ op: 'remove-tree', path: undo.path }]
  // The agent of a main step that ended without stopping it: emptied, it holds nothing worth reaching.
  return [{ op: 'attempt', argv: emptyAgentCommand(undo.socket) }]
}
