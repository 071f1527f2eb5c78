import { AccountFiles } from './account-files.js'
import type { Plan, Step } from './plan.js'
import type { ServiceManager } from './probe.js'
import { type Journal, saveJournal } from './state.js'

/**
 * Carries out the plan on the runner. Every change is written to the journal (and the journal to the action's state)
 * the moment before it happens, so the post step can undo exactly what was done even after a failure half-way.
 */
export async function applyPlan(plan: Plan): Promise<Journal> {
  const files = new AccountFiles(plan.asRoot && process.getuid?.() !== 0)
  const journal: Journal = { asRoot: plan.asRoot, undo: [] }
  const record = (undo: Journal['undo'][number]): void => {
    journal.undo.push(undo)
    saveJournal(journal)
  }
  let backups = 0
  // Files inside a directory this run created need no existence check nor journal entry of their own: the directory
  // goes whole. Each check is a sudo round trip.
  const createdDirs: string[] = []
  const backupOf = async (path: string): Promise<Buffer | undefined> => {
    if (createdDirs.some(dir => path.startsWith(`${dir}/`))) return undefined
    if (!(await files.exists(path))) {
      record({ kind: 'remove-file', path })
      return undefined
    }
    const original = await files.read(path)
    const backup = `${plan.workDir}/backup-${++backups}`
    await files.create(backup, original, 0o600)
    record({ kind: 'restore-file', path, backup })
    return original
  }

  for (const step of plan.steps) await applyStep(step)
  return journal

  async function applyStep(step: Step): Promise<void> {
    switch (step.kind) {
      case 'mkdir':
        if (await files.exists(step.path)) return
        record(
          step.owned
            ? { kind: 'remove-tree', path: step.path }
            : { kind: 'remove-empty-dir', path: step.path }
        )
        await files.mkdir(step.path)
        if (step.owned) createdDirs.push(step.path)
        return
      case 'write': {
        const original = await backupOf(step.path)
        if (original === undefined) await files.create(step.path, step.content, step.mode)
        else await files.overwrite(step.path, step.content)
        return
      }
      case 'prepend':
      case 'append': {
        const original = await backupOf(step.path)
        if (original === undefined) {
          await files.create(step.path, step.content, step.mode)
          return
        }
        const block = Buffer.from(step.content)
        const separator =
          original.length > 0 && original.at(-1) !== 0x0a ? Buffer.from('\n') : Buffer.alloc(0)
        const content =
          step.kind === 'prepend'
            ? Buffer.concat([block, original])
            : Buffer.concat([original, separator, block])
        await files.overwrite(step.path, content)
        return
      }
      case 'restart-daemon':
        record({ kind: 'restart-daemon', manager: step.manager })
        await restartDaemon(files, step.manager)
        return
      case 'ssh-masters':
        record({ kind: 'close-ssh-masters', aliases: step.aliases, path: step.controlDir })
        return
    }
  }
}

/** The daemon reads nix.conf only when it starts (NIX-FACTS.md). */
export async function restartDaemon(files: AccountFiles, manager: ServiceManager): Promise<void> {
  if (manager === 'systemd') await files.command('systemctl', ['restart', 'nix-daemon.service'])
  else if (manager === 'launchd')
    await files.command('launchctl', ['kickstart', '-k', 'system/org.nixos.nix-daemon'])
  else throw new Error('no service manager to restart the nix-daemon with')
}
