import * as core from '@actions/core'
import { AccountFiles } from './account-files.js'
import { restartDaemon } from './apply.js'
import { loadJournal, type Undo } from './state.js'

/** The post step: undoes, newest first, what main recorded. It warns instead of failing, so it never breaks a job. */
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
  const files = new AccountFiles(journal.asRoot && process.getuid?.() !== 0)
  let restart: Undo | undefined
  let failures = 0
  for (const undo of [...journal.undo].reverse()) {
    if (undo.kind === 'restart-daemon') {
      restart = undo
      continue
    }
    try {
      await undoOne(files, undo)
    } catch (error) {
      failures++
      core.warning(`nix-offload could not undo its change to ${undo.path}: ${(error as Error).message}`)
    }
  }
  // After every file is back, so the daemon starts on the runner's own nix.conf again.
  if (restart?.kind === 'restart-daemon') {
    try {
      await restartDaemon(files, restart.manager)
    } catch (error) {
      failures++
      core.warning(
        `nix-offload could not restart the nix-daemon on its old configuration: ${(error as Error).message}`
      )
    }
  }
  core.info(
    failures === 0
      ? `nix-offload: undid ${journal.undo.length} change(s); the runner is as it was before the action.`
      : `nix-offload: ${failures} change(s) could not be undone (see the warnings above).`
  )
}

async function undoOne(files: AccountFiles, undo: Exclude<Undo, { kind: 'restart-daemon' }>): Promise<void> {
  switch (undo.kind) {
    case 'restore-file':
      await files.overwrite(undo.path, await files.read(undo.backup))
      return
    case 'remove-file':
      await files.remove(undo.path)
      return
    case 'remove-tree':
      await files.removeTree(undo.path)
      return
    case 'close-ssh-masters':
      await closeMasters(files, undo.aliases, undo.path)
      return
    case 'remove-empty-dir':
      if (!(await files.removeEmptyDir(undo.path))) {
        core.warning(
          `nix-offload left ${undo.path} in place: it created it, but it now holds files the action did not write.`
        )
      }
      return
  }
}

/**
 * `ssh -O exit` through each alias (while its config still exists) ends its master; a master that does not answer is
 * killed by the control path its command line names. Both are allowed to find nothing.
 */
async function closeMasters(files: AccountFiles, aliases: string[], controlDir: string): Promise<void> {
  for (const alias of aliases) await files.attempt('ssh', ['-O', 'exit', alias])
  // [c]: the pattern must not match the command line of the sudo that runs pkill.
  await files.attempt('pkill', ['-f', '--', `${controlDir}/[c]m-`])
}
