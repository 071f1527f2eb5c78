import {
  inGroup,
  logInfo,
  logWarning,
  Phase,
  phase,
  runCommand,
  stderrTail,
  stopProcesses
} from '../base/index.js'
import { label, NOTHING_TO_UNDO } from '../inputs/index.js'
import { NIX_FEATURES, parseStoreInfo, storeInfoArgs } from '../nix/index.js'
import { checkAll, type FileOp, fileOps } from './file-agent.js'
import { sharedFiles } from './nix-config.js'
import { nixEnvironment, type Plan, type Step } from './plan.js'
import { type RunnerFacts, viaSudo } from './probe.js'
import { blockChange, blockUndoOp } from './ssh-config.js'
import {
  controlPathIn,
  mastersChange,
  mastersUndoOps,
  sshCheck,
  SshMasters,
  STORE_CHECK_TIMEOUT_MS,
  type StoreReach
} from './ssh-masters.js'
import { type Journal, loadChildren, loadJournal, saveJournal, type Undo } from './state.js'
import {
  type KeyAgentStep,
  startKeyAgents,
  stopOwnKeyAgent,
  workDirChange,
  workDirUndoOps
} from './work-dir.js'

/**
 * Changing the runner and taking it back: a plan's steps as one batch of file operations with the journal of their
 * undos (applyPlan), and that journal undone newest first in one batch (undoJournal), each resource's change and undo
 * coming from its own module; the store check that opens the SSH masters; and the post step.
 */

/**
 * Configures the runner for the builders (the plan, applied and journaled) and pings every builder's store through
 * the written config as the account that offloads (which opens the multiplexing masters, returned to be closed: each
 * configuration its own).
 * Later steps see the builders only once `exportNixConfig` runs.
 */
export async function configureRunner(
  plan: Plan,
  facts: RunnerFacts | undefined,
  options: { announce: boolean; signal?: AbortSignal } = { announce: true }
): Promise<{ stores: StoreReach[]; journal: Journal; masters: SshMasters }> {
  if (options.announce && facts !== undefined) announcePlan(plan, facts)
  const journal = await phase('configure', applyPlan(plan))
  const masters = new SshMasters()
  const stores = await phase('store check', pingStores(plan, facts, { masters, signal: options.signal }))
  return { stores, journal, masters }
}

/** Says whom the runner is configured for and how, each builder's alias, and the plan's warnings. */
export function announcePlan(plan: Plan, facts: RunnerFacts): void {
  const who =
    plan.path === 'remote-store'
      ? `${facts.userName} (its own nix opens the SSH connections, with ${plan.sshConfigFile ?? 'an ssh config'})`
      : plan.asRoot
        ? 'root (the nix-daemon opens the SSH connections)'
        : facts.userName
  logInfo(`Configuring for ${who} (${plan.path}).`)
  for (const builder of plan.builders) {
    logInfo(`Builder ${builder.storeUri} → ${label(builder)} (${builder.systems.join(', ')})`)
  }
  for (const warning of plan.warnings) logWarning(warning, { title: 'nix-offload' })
}

/** The plan as one batch of file operations, and each undo with the operation whose change it takes back. */
interface Batch {
  ops: FileOp[]
  undos: { undo: Undo; op?: number }[]
  /** The key agents to start once the work directory exists. */
  agents: KeyAgentStep[]
}

/**
 * Carries out the plan on the runner in one batch of file operations. The journal of every change is saved to the
 * action's state before the batch starts, so that a main step killed half-way leaves the post step a record: undoing
 * what never happened is harmless (no block has this job's 128-bit token, no directory its name). Once the batch has
 * answered, the journal keeps only the undos of the changes made: a directory or a block that was there already is
 * not this job's to remove.
 */
export async function applyPlan(plan: Plan): Promise<Journal> {
  const { ops, undos, agents } = batchOf(plan)
  saveJournal({ asRoot: plan.asRoot, token: plan.token, undo: undos.map(entry => entry.undo) })
  const results = await fileOps(ops, { viaSudo: viaSudo(plan), keepGoing: false })
  const made = undos.filter(entry => entry.op === undefined || results[entry.op]?.ok === true)
  const journal: Journal = { asRoot: plan.asRoot, token: plan.token, undo: made.map(entry => entry.undo) }
  saveJournal(journal)
  checkAll(ops, results)
  await startKeyAgents(agents)
  return journal
}

function batchOf(plan: Plan): Batch {
  const batch: Batch = { ops: [], undos: [], agents: [] }
  let ownDir: string | undefined
  for (const step of plan.steps) {
    const { op, undo } = changeOf(step, plan.token, ownDir)
    if (step.kind === 'mkdir') ownDir = step.path
    if (step.kind === 'key-agent') batch.agents.push(step)
    if (undo !== undefined) batch.undos.push({ undo, ...(op === undefined ? {} : { op: batch.ops.length }) })
    if (op !== undefined) batch.ops.push(op)
  }
  return batch
}

/** A step's change, from the module of the resource it changes. */
function changeOf(step: Step, token: string, ownDir: string | undefined): { op?: FileOp; undo?: Undo } {
  switch (step.kind) {
    case 'block':
      return blockChange(step, token)
    case 'ssh-masters':
      return mastersChange(step)
    default:
      return workDirChange(step, ownDir)
  }
}

/** What undoing a journal came to. */
export interface UndoOutcome {
  /** Changes that could not be undone; each was a warning. */
  failures: number
  /** Shared files that still hold other jobs' blocks, which this job left alone: path → how many. */
  othersLeft: Map<string, number>
}

/**
 * Undoes a journal, newest change first, in one batch of file operations: each block removal checks that none of
 * this job's block is left, and counts other jobs' blocks. A failure is a warning, never an error.
 */
export async function undoJournal(journal: Journal): Promise<UndoOutcome> {
  // An agent this process started stops here; one that a main step left running is emptied by the file operations.
  const left: Undo[] = []
  for (const undo of journal.undo)
    if (undo.kind !== 'stop-key-agent' || !(await stopOwnKeyAgent(undo))) left.push(undo)
  const ops = left.reverse().flatMap(undoOpsOf)
  const outcome: UndoOutcome = { failures: 0, othersLeft: new Map() }
  try {
    const results = await fileOps(ops, { viaSudo: viaSudo(journal), keepGoing: true })
    ops.forEach((op, index) => {
      const result = results[index]
      if (op.op === 'attempt') return
      const path = 'path' in op ? op.path : ''
      if (result?.ok === true) {
        if ((result.others ?? 0) > 0) outcome.othersLeft.set(path, result.others ?? 0)
        return
      }
      outcome.failures++
      logWarning(`nix-offload could not undo its change to ${path}: ${result?.error ?? 'no answer'}`)
    })
  } catch (error) {
    outcome.failures++
    logWarning(
      `nix-offload could not undo its changes: ${error instanceof Error ? error.message : String(error)}`
    )
  }
  return outcome
}

/** An undo's file operations, from the module of the resource it takes back. */
function undoOpsOf(undo: Undo): FileOp[] {
  switch (undo.kind) {
    case 'remove-block':
      return [blockUndoOp(undo)]
    case 'close-ssh-masters':
      return mastersUndoOps(undo)
    default:
      return workDirUndoOps(undo)
  }
}

/**
 * The seed's `sudo nix store ping --store ssh-ng://user@alias` check (spelled `nix store info` from Nix 2.19, see
 * nix/), for every builder at once. It goes through the same ssh config, key file and known_hosts the daemon will
 * use, as the same account, so it catches what the action's own SSH client cannot: permissions, an ssh config of
 * root's that overrides ours, a sudo that does not work. Without `facts` (started before the runner probe ends, for
 * the remote-store plan, which needs no sudo): `nix` from PATH, and the `store ping` form that every version accepts.
 */
export async function pingStores(
  plan: Plan,
  facts: RunnerFacts | undefined,
  options: { masters?: SshMasters; signal?: AbortSignal | undefined } = {}
): Promise<StoreReach[]> {
  const { masters: opened = new SshMasters(), signal } = options
  const configFile = plan.sshConfigFile
  if (plan.path === 'remote-store' && configFile !== undefined) {
    const masters = plan.steps.find(step => step.kind === 'ssh-masters')
    const controlPath = masters === undefined ? undefined : controlPathIn(masters.controlDir)
    return Promise.all(
      plan.builders.map(builder => sshCheck({ configFile, builder, controlPath }, opened, signal))
    )
  }
  return Promise.all(plan.builders.map(builder => nixStoreCheck(plan, builder, facts, signal)))
}

async function nixStoreCheck(
  plan: Plan,
  builder: Plan['builders'][number],
  facts: RunnerFacts | undefined,
  signal: AbortSignal | undefined
): Promise<StoreReach> {
  const check = storeInfoArgs({
    implementation: facts?.nixImplementation ?? 'nix',
    version: facts?.nixVersion ?? ''
  })
  const nixPath = facts?.nixPath ?? 'nix'
  const args = [...NIX_FEATURES, ...check, '--store', builder.storeUri]
  const started = Date.now()
  // Bounded: a builder that stops answering after the preflight must not turn this into a six-hour job.
  const bound = { timeoutMs: STORE_CHECK_TIMEOUT_MS, ...(signal === undefined ? {} : { signal }) }
  const result = viaSudo(plan)
    ? await runCommand('sudo', ['-n', nixPath, ...args], bound)
    : await runCommand(nixPath, args, { ...bound, env: nixEnvironment(plan, process.env) })
  const reach: StoreReach = {
    storeUri: builder.storeUri,
    builder: label(builder),
    command: `nix ${check.join(' ')} --store ${builder.storeUri}`,
    ok: result.code === 0,
    ms: Date.now() - started
  }
  const { version, trusted } = parseStoreInfo(result.stdout.toString(), result.stderr)
  if (version !== undefined) reach.version = version
  if (trusted !== undefined) reach.trusted = trusted
  if (!reach.ok) reach.error = stderrTail(result.stderr)
  if (result.timedOut === true) {
    reach.error =
      `it hung: no answer within ${STORE_CHECK_TIMEOUT_MS / 1000} s (the builder accepted the SSH connection ` +
      'but its Nix did not answer: is its nix-daemon running and responsive?)'
  }
  return reach
}

/**
 * The post step: stops what a killed main left running, then undoes, newest first, what main recorded, in one batch
 * of file operations, in the log's Undo group. It warns instead of failing, so it never breaks a job.
 */
export function cleanup(): Promise<void> {
  return inGroup(Phase.Undo, undoAll)
}

async function undoAll(): Promise<void> {
  await stopLeftRunning()
  let journal
  try {
    journal = loadJournal(sharedFiles())
  } catch (error) {
    logWarning(
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
    logWarning(
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
