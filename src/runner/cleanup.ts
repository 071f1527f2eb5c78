import * as core from '@actions/core'
import { readFileSync } from 'node:fs'
import { emptyAgentCommand, logInfo, stopKeyAgent, stopProcesses } from '../base/index.js'
import { NOTHING_TO_UNDO } from '../inputs/index.js'
import { type FileOp, fileOps } from './file-agent.js'
import { NIX_CONF, SHARED_MACHINES } from './plan.js'
import {
  type Journal,
  loadChildren,
  loadJournal,
  RESTART_COMMANDS,
  type SharedFiles,
  type Undo
} from './state.js'

/** What undoing a journal came to. */
export interface UndoOutcome {
  /** Changes that could not be undone; each was a warning. */
  failures: number
  /** Shared files that still hold other jobs' blocks, which this job left alone: path → how many. */
  othersLeft: Map<string, number>
}

/**
 * The post step: stops what a killed main left running, then undoes, newest first, what main recorded, in one batch
 * of file operations. It warns instead of failing, so it never breaks a job.
 */
export async function cleanup(): Promise<void> {
  await stopLeftRunning()
  let journal
  try {
    journal = loadJournal(sharedFiles())
  } catch (error) {
    core.warning(
      `nix-offload did not undo anything: the state its main step saved is not a journal it could have written ` +
        `(${error instanceof Error ? error.message : String(error)}), so nothing was touched. A process of the job ` +
        `may have written to GITHUB_STATE; remove any nix-offload-<token> directory and "# nix-offload <token>" ` +
        `block it left by hand.`
    )
    return
  }
  if (journal === undefined || journal.undo.length === 0) {
    logInfo(NOTHING_TO_UNDO)
    return
  }
  const outcome = await undoJournal(journal)
  logInfo(describeUndo(journal, outcome))
}

/** How long a process left running has to end after SIGTERM before it is killed. */
const STOP_WAIT_MS = 3_000

/**
 * A main step killed (SIGKILL, the OOM killer) leaves its `nix` running, and with it the build on the builder, whose
 * daemon interrupts it once this client's connection is gone. Stopped first: they use the files the undo removes.
 */
async function stopLeftRunning(): Promise<void> {
  let records
  try {
    records = loadChildren()
  } catch (error) {
    core.warning(
      `nix-offload stopped no process: the record of what its main step started is not one it could have written ` +
        `(${error instanceof Error ? error.message : String(error)}).`
    )
    return
  }
  const stopped = await stopProcesses(records, STOP_WAIT_MS)
  if (stopped.length === 0) return
  const named = stopped.map(record => `${record.label} (pid ${record.pid})`).join(', ')
  logInfo(`nix-offload: stopped ${stopped.length} process(es) main left running: ${named}.`)
}

function describeUndo(journal: Journal, outcome: UndoOutcome): string {
  if (outcome.failures > 0)
    return `nix-offload: ${outcome.failures} change(s) could not be undone (see the warnings above).`
  const others = [...outcome.othersLeft].map(([path, count]) => `${count} in ${path}`)
  return others.length === 0
    ? `nix-offload: undid ${journal.undo.length} change(s); the runner is as it was before the action.`
    : `nix-offload: undid ${journal.undo.length} change(s); none of this job's configuration is left. Other jobs' ` +
        `blocks (${others.join(', ')}) are theirs, and were left alone.`
}

/**
 * Undoes a journal, newest change first, in one batch of file operations: each block removal checks that none of
 * this job's block is left, and counts other jobs' blocks. A failure is a warning, never an error.
 */
export async function undoJournal(journal: Journal): Promise<UndoOutcome> {
  const viaSudo = journal.asRoot && process.getuid?.() !== 0
  // An agent this process started stops here; one that a main step left running is emptied by the file operations.
  const left: Undo[] = []
  for (const undo of journal.undo)
    if (undo.kind !== 'stop-key-agent' || !(await stopKeyAgent(undo.socket))) left.push(undo)
  const ops = left.reverse().flatMap(undoOps)
  const outcome: UndoOutcome = { failures: 0, othersLeft: new Map() }
  try {
    const results = await fileOps(ops, { viaSudo, keepGoing: true })
    ops.forEach((op, index) => {
      const result = results[index]
      if (op.op === 'attempt') return
      const path = 'path' in op ? op.path : ''
      if (result?.ok === true) {
        if ((result.others ?? 0) > 0) outcome.othersLeft.set(path, result.others ?? 0)
        return
      }
      outcome.failures++
      core.warning(`nix-offload could not undo its change to ${path}: ${result?.error ?? 'no answer'}`)
    })
  } catch (error) {
    outcome.failures++
    core.warning(
      `nix-offload could not undo its changes: ${error instanceof Error ? error.message : String(error)}`
    )
  }
  return outcome
}

function undoOps(undo: Undo): FileOp[] {
  switch (undo.kind) {
    case 'remove-block':
      return [
        {
          op: 'remove-block',
          path: undo.path,
          token: undo.token,
          at: undo.at,
          ...(undo.restart === undefined ? {} : { restart: [...RESTART_COMMANDS[undo.restart]] })
        }
      ]
    case 'remove-tree':
      return [{ op: 'remove-tree', path: undo.path }]
    case 'stop-key-agent':
      // The agent of a main step that ended without stopping it: emptied, it holds nothing worth reaching.
      return [{ op: 'attempt', argv: emptyAgentCommand(undo.socket) }]
    case 'close-ssh-masters':
      // `ssh -O stop` through each alias (its config is still there): the master takes no new session and ends with
      // the last one, at once when idle. A build of another job that the shared daemon sent through this alias
      // (machines-file path) finishes instead of dying with it. A master that does not answer is killed by the control
      // path its command line names (a stopped one no longer names it; [c]: not to match the agent's own command line).
      return [
        ...undo.aliases.map((alias): FileOp => ({
          op: 'attempt',
          argv: [
            'ssh',
            ...(undo.configFile === undefined ? [] : ['-F', undo.configFile]),
            '-O',
            'stop',
            alias
          ]
        })),
        { op: 'attempt', argv: ['pkill', '-f', '--', `${escapeRegex(undo.path)}/[c]m-`] }
      ]
  }
}

/** A path as an extended regular expression that matches only itself (pkill -f). */
/** Nix's `builders` when nix.conf sets none: `@` and this file, in the configuration directory /etc/nix. */
const DEFAULT_MACHINES = '/etc/nix/machines'

function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')
}

/**
 * The shared files a journal's blocks may be in: nix.conf, the action's own machines file, Nix's default one (the
 * daemon reads `@/etc/nix/machines` when its nix.conf sets no `builders`), and each machines file nix.conf names now.
 */
function sharedFiles(): SharedFiles {
  let conf = ''
  try {
    conf = readFileSync(NIX_CONF, 'utf8')
  } catch {
    // No nix.conf to read: only the default machines file is the daemon's.
  }
  const named = [...conf.matchAll(/^\s*builders\s*=\s*@(\/\S+)\s*$/gm)].map(match => match[1] ?? '')
  return { nixConf: NIX_CONF, machines: [SHARED_MACHINES, DEFAULT_MACHINES, ...named] }
}
