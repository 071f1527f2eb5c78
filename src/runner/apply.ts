import { checkAll, type FileOp, fileOps } from './file-agent.js'
import type { Plan } from './plan.js'
import type { ServiceManager } from './probe.js'
import { runChecked } from '../base/index.js'
import { type Journal, saveJournal, type Undo } from './state.js'

/**
 * Carries out the plan on the runner in two batches of file operations: one that reads what is there, one that
 * changes it. The journal of every change is saved to the action's state before the changes start, so the post step
 * can undo exactly what was done even after a failure half-way: backups are written before the files they save are
 * changed, and undoing what never happened is harmless.
 */
export async function applyPlan(plan: Plan): Promise<Journal> {
  const viaSudo = plan.asRoot && process.getuid?.() !== 0
  const journal: Journal = { asRoot: plan.asRoot, undo: [] }
  const found = await survey(plan, viaSudo)

  const createdDirs: string[] = []
  let ops: FileOp[] = []
  let backups = 0
  const flush = async (): Promise<void> => {
    saveJournal(journal)
    const batch = ops
    ops = []
    checkAll(batch, await fileOps(batch, { viaSudo, keepGoing: false }))
  }
  const record = (undo: Undo): void => {
    journal.undo.push(undo)
  }

  for (const step of plan.steps) {
    if (step.kind === 'restart-daemon') {
      await flush()
      record({ kind: 'restart-daemon', manager: step.manager })
      saveJournal(journal)
      await restartDaemon(viaSudo, step.manager)
      continue
    }
    if (step.kind === 'ssh-masters') {
      record({
        kind: 'close-ssh-masters',
        aliases: step.aliases,
        path: step.controlDir,
        ...(step.configFile === undefined ? {} : { configFile: step.configFile })
      })
      continue
    }
    if (step.kind === 'mkdir') {
      if (found.get(step.path) !== undefined) continue
      record(
        step.owned ? { kind: 'remove-tree', path: step.path } : { kind: 'remove-empty-dir', path: step.path }
      )
      ops.push({ op: 'mkdir', path: step.path })
      if (step.owned) createdDirs.push(step.path)
      continue
    }
    const content = Buffer.from(step.content)
    // Inside a directory this run created, a file needs no journal entry of its own: the directory goes whole.
    const fresh = createdDirs.some(dir => step.path.startsWith(`${dir}/`))
    const original = fresh ? undefined : found.get(step.path)
    if (original === undefined) {
      if (!fresh) record({ kind: 'remove-file', path: step.path })
      ops.push({ op: 'create', path: step.path, data: content.toString('base64'), mode: step.mode })
      continue
    }
    const backup = `${plan.workDir}/backup-${++backups}`
    record({ kind: 'restore-file', path: step.path, backup })
    const separator = original.length > 0 && original.at(-1) !== 0x0a ? Buffer.from('\n') : Buffer.alloc(0)
    const changed =
      step.kind === 'write'
        ? content
        : step.kind === 'prepend'
          ? Buffer.concat([content, original])
          : Buffer.concat([original, separator, content])
    ops.push(
      { op: 'create', path: backup, data: original.toString('base64'), mode: 0o600 },
      { op: 'overwrite', path: step.path, data: changed.toString('base64') }
    )
  }
  await flush()
  return journal
}

/** What each path of the plan holds now: its bytes, an empty buffer for a directory, undefined when missing. */
async function survey(plan: Plan, viaSudo: boolean): Promise<Map<string, Buffer | undefined>> {
  const paths = plan.steps.flatMap(step => ('path' in step ? [step.path] : []))
  const ops: FileOp[] = paths.map(path => ({ op: 'read-if-exists', path }))
  const results = await fileOps(ops, { viaSudo, keepGoing: true })
  const found = new Map<string, Buffer | undefined>()
  paths.forEach((path, index) => {
    const result = results[index]
    // A directory cannot be read as a file, but exists all the same.
    if (result?.ok === false && /EISDIR/.test(result.error ?? '')) found.set(path, Buffer.alloc(0))
    else if (result?.ok !== true) throw new Error(`cannot read ${path}: ${result?.error ?? 'no answer'}`)
    else found.set(path, result.exists === true ? Buffer.from(result.data ?? '', 'base64') : undefined)
  })
  return found
}

/** The daemon reads nix.conf only when it starts (NIX-FACTS.md). */
export async function restartDaemon(viaSudo: boolean, manager: ServiceManager): Promise<void> {
  const command =
    manager === 'systemd'
      ? ['systemctl', 'restart', 'nix-daemon.service']
      : manager === 'launchd'
        ? ['launchctl', 'kickstart', '-k', 'system/org.nixos.nix-daemon']
        : undefined
  if (command === undefined) throw new Error('no service manager to restart the nix-daemon with')
  const [program = '', ...args] = viaSudo ? ['sudo', '-n', ...command] : command
  await runChecked(program, args)
}
