import * as core from '@actions/core'
import { NOTHING_TO_UNDO } from '../inputs/index.js'
import { type FileOp, fileOps } from './file-agent.js'
import { type Journal, loadJournal, type Undo } from './state.js'
import { logInfo } from '../base/index.js'

/** What undoing a journal came to. */
export interface UndoOutcome {
  /** Changes that could not be undone; each was a warning. */
  failures: number
  /** Shared files that still hold other jobs' blocks, which this job left alone: path → how many. */
  othersLeft: Map<string, number>
}

/**
 * The post step: undoes, newest first, what main recorded, in one batch of file operations. It warns instead of
 * failing, so it never breaks a job.
 */
export async function cleanup(): Promise<void> {
  let journal
  try {
    journal = loadJournal()
  } catch (error) {
    core.warning(
      `nix-offload could not read what its main step changed, so it undid nothing: ${String(error)}`
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
  const ops = [...journal.undo].reverse().flatMap(undoOps)
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
          ...(undo.restart === undefined ? {} : { restart: undo.restart })
        }
      ]
    case 'remove-tree':
      return [{ op: 'remove-tree', path: undo.path }]
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
        { op: 'attempt', argv: ['pkill', '-f', '--', `${undo.path}/[c]m-`] }
      ]
  }
}
