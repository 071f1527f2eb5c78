import { checkAll, type FileOp, fileOps } from './file-agent.js'
import { startKeyAgent } from '../base/index.js'
import type { Plan, Step } from './plan.js'
import type { ServiceManager } from './probe.js'
import { type Journal, type Restart, RESTART_COMMANDS, saveJournal } from './state.js'

/**
 * Carries out the plan on the runner in one batch of file operations. The journal of every change is saved to the
 * action's state before the batch starts, so the post step can undo exactly what was done even after a failure
 * half-way: undoing what never happened is harmless (a missing block, a missing directory).
 */
export async function applyPlan(plan: Plan): Promise<Journal> {
  const viaSudo = plan.asRoot && process.getuid?.() !== 0
  const journal: Journal = { asRoot: plan.asRoot, undo: [] }
  const ops: FileOp[] = []
  const agents: Extract<Step, { kind: 'key-agent' }>[] = []
  let ownDir: string | undefined

  for (const step of plan.steps) {
    if (step.kind === 'ssh-masters') {
      journal.undo.push({
        kind: 'close-ssh-masters',
        aliases: step.aliases,
        path: step.controlDir,
        ...(step.configFile === undefined ? {} : { configFile: step.configFile })
      })
    } else if (step.kind === 'key-agent') {
      journal.undo.push({ kind: 'stop-key-agent', socket: step.socket })
      agents.push(step)
    } else if (step.kind === 'mkdir') {
      ownDir = step.path
      journal.undo.push({ kind: 'remove-tree', path: step.path })
      ops.push({ op: 'mkdir', path: step.path })
    } else if (step.kind === 'write') {
      // A file of its own needs no undo of its own: its directory goes whole.
      if (ownDir === undefined || !step.path.startsWith(`${ownDir}/`))
        throw new Error(`the plan writes ${step.path} outside the action's own directory`)
      ops.push({
        op: 'create',
        path: step.path,
        data: Buffer.from(step.content).toString('base64'),
        mode: step.mode
      })
    } else {
      const restart = step.restart === undefined ? undefined : restartOf(step.restart)
      journal.undo.push({
        kind: 'remove-block',
        path: step.path,
        token: plan.token,
        at: step.at,
        ...(restart === undefined ? {} : { restart })
      })
      ops.push({
        op: 'add-block',
        path: step.path,
        token: plan.token,
        text: step.content,
        at: step.at,
        mode: step.mode,
        ...(restart === undefined ? {} : { restart: [...RESTART_COMMANDS[restart]] })
      })
    }
  }
  saveJournal(journal)
  checkAll(ops, await fileOps(ops, { viaSudo, keepGoing: false }))
  // Once its directory exists.
  for (const agent of agents) await startKeyAgent(agent.socket, agent.key)
  return journal
}

/** The daemon reads nix.conf only when it starts: the file agent restarts it, as root, with this manager's command. */
function restartOf(manager: ServiceManager): Restart {
  if (manager === 'none') throw new Error('no service manager to restart the nix-daemon with')
  return manager
}
