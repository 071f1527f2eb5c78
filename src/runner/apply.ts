import { startKeyAgent } from '../base/index.js'
import { checkAll, type FileOp, fileOps } from './file-agent.js'
import type { Plan, Step } from './plan.js'
import type { ServiceManager } from './probe.js'
import { type Journal, type Restart, RESTART_COMMANDS, saveJournal, type Undo } from './state.js'

/** The plan as one batch of file operations, and each undo with the operation whose change it takes back. */
interface Batch {
  ops: FileOp[]
  undos: { undo: Undo; op?: number }[]
  /** The key agents to start once the work directory exists. */
  agents: Extract<Step, { kind: 'key-agent' }>[]
}

/**
 * Carries out the plan on the runner in one batch of file operations. The journal of every change is saved to the
 * action's state before the batch starts, so that a main step killed half-way leaves the post step a record: undoing
 * what never happened is harmless (no block has this job's 128-bit token, no directory its name). Once the batch has
 * answered, the journal keeps only the undos of the changes made: a directory or a block that was there already is
 * not this job's to remove.
 */
export async function applyPlan(plan: Plan): Promise<Journal> {
  const viaSudo = plan.asRoot && process.getuid?.() !== 0
  const { ops, undos, agents } = batchOf(plan)
  saveJournal({ asRoot: plan.asRoot, token: plan.token, undo: undos.map(entry => entry.undo) })
  const results = await fileOps(ops, { viaSudo, keepGoing: false })
  const made = undos.filter(entry => entry.op === undefined || results[entry.op]?.ok === true)
  const journal: Journal = { asRoot: plan.asRoot, token: plan.token, undo: made.map(entry => entry.undo) }
  saveJournal(journal)
  checkAll(ops, results)
  for (const agent of agents) await startKeyAgent(agent.socket, agent.key)
  return journal
}

function batchOf(plan: Plan): Batch {
  const batch: Batch = { ops: [], undos: [], agents: [] }
  let ownDir: string | undefined
  for (const step of plan.steps) {
    if (step.kind === 'ssh-masters') {
      batch.undos.push({
        undo: {
          kind: 'close-ssh-masters',
          aliases: step.aliases,
          path: step.controlDir,
          ...(step.configFile === undefined ? {} : { configFile: step.configFile })
        }
      })
    } else if (step.kind === 'key-agent') {
      batch.undos.push({ undo: { kind: 'stop-key-agent', socket: step.socket } })
      batch.agents.push(step)
    } else if (step.kind === 'mkdir') {
      ownDir = step.path
      batch.undos.push({ undo: { kind: 'remove-tree', path: step.path }, op: batch.ops.length })
      batch.ops.push({ op: 'mkdir', path: step.path })
    } else if (step.kind === 'write') {
      // A file of its own needs no undo of its own: its directory goes whole.
      if (ownDir === undefined || !step.path.startsWith(`${ownDir}/`))
        throw new Error(`the plan writes ${step.path} outside the action's own directory`)
      const data = Buffer.from(step.content).toString('base64')
      batch.ops.push({ op: 'create', path: step.path, data, mode: step.mode })
    } else {
      const restart = step.restart === undefined ? undefined : restartOf(step.restart)
      const block = { path: step.path, token: plan.token, at: step.at }
      batch.undos.push({
        undo: { kind: 'remove-block', ...block, ...(restart === undefined ? {} : { restart }) },
        op: batch.ops.length
      })
      batch.ops.push({
        op: 'add-block',
        ...block,
        text: step.content,
        mode: step.mode,
        ...(restart === undefined ? {} : { restart: [...RESTART_COMMANDS[restart]] })
      })
    }
  }
  return batch
}

/** The daemon reads nix.conf only when it starts: the file agent restarts it, as root, with this manager's command. */
function restartOf(manager: ServiceManager): Restart {
  if (manager === 'none') throw new Error('no service manager to restart the nix-daemon with')
  return manager
}
