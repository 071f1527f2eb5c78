import * as core from '@actions/core'
import { restartDaemon } from './apply.js'
import { type FileOp, fileOps } from './file-agent.js'
import { type Journal, loadJournal, type Undo } from './state.js'

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
    core.info('nix-offload: nothing to undo (the main step changed nothing on this runner).')
    return
  }
  const failures = await undoJournal(journal)
  core.info(
    failures === 0
      ? `nix-offload: undid ${journal.undo.length} change(s); the runner is as it was before the action.`
      : `nix-offload: ${failures} change(s) could not be undone (see the warnings above).`
  )
}

/**
 * Undoes a journal, newest change first, in one batch of file operations, then restarts the daemon if main did.
 * Returns how many changes could not be undone; each is a warning, never an error.
 */
export async function undoJournal(journal: Journal): Promise<number> {
  const viaSudo = journal.asRoot && process.getuid?.() !== 0
  const undos = [...journal.undo].reverse().filter(undo => undo.kind !== 'restart-daemon')
  const ops = undos.flatMap(undoOps)
  let failures = 0
  try {
    const results = await fileOps(ops, { viaSudo, keepGoing: true })
    ops.forEach((op, index) => {
      const result = results[index]
      if (op.op === 'attempt' || result?.ok === true) return
      failures++
      const path = 'path' in op ? op.path : op.to
      core.warning(
        op.op === 'remove-empty-dir'
          ? `nix-offload left ${path} in place: it created it, but it now holds files the action did not write.`
          : `nix-offload could not undo its change to ${path}: ${result?.error ?? 'no answer'}`
      )
    })
  } catch (error) {
    failures++
    core.warning(
      `nix-offload could not undo its changes: ${error instanceof Error ? error.message : String(error)}`
    )
  }
  // After every file is back, so the daemon starts on the runner's own nix.conf again.
  const restart = journal.undo.find(undo => undo.kind === 'restart-daemon')
  if (restart?.kind === 'restart-daemon') {
    try {
      await restartDaemon(viaSudo, restart.manager)
    } catch (error) {
      failures++
      core.warning(`nix-offload could not restart the nix-daemon on its old configuration: ${String(error)}`)
    }
  }
  return failures
}

function undoOps(undo: Exclude<Undo, { kind: 'restart-daemon' }>): FileOp[] {
  switch (undo.kind) {
    case 'restore-file':
      return [{ op: 'copy', from: undo.backup, to: undo.path }]
    case 'remove-file':
      return [{ op: 'remove', path: undo.path }]
    case 'remove-tree':
      return [{ op: 'remove-tree', path: undo.path }]
    case 'remove-empty-dir':
      return [{ op: 'remove-empty-dir', path: undo.path }]
    case 'close-ssh-masters':
      // `ssh -O exit` through each alias (its config is still there) ends its master; one that does not answer is
      // killed by the control path its command line names ([c]: not to match the agent's own command line).
      return [
        ...undo.aliases.map((alias): FileOp => ({
          op: 'attempt',
          argv: [
            'ssh',
            ...(undo.configFile === undefined ? [] : ['-F', undo.configFile]),
            '-O',
            'exit',
            alias
          ]
        })),
        { op: 'attempt', argv: ['pkill', '-f', '--', `${undo.path}/[c]m-`] }
      ]
  }
}
