/**
 * runner: the runner's side. The read-only probe of its Nix (probe.ts), the pure plan of every file to write and
 * command to run (plan.ts, rendering in render.ts), applying it with a journal of undo steps (apply.ts, through the
 * batched sudo file agent), the check that root's nix-daemon reaches each builder through what was written
 * (store-ping.ts), the state saved for the post step (state.ts), and the post step's undo (cleanup.ts).
 * May import: base, inputs, nix.
 */

export { isTrustedUser, probeRunner, type RunnerFacts, runnerRelease } from './probe.js'
export {
  type ConfigPath,
  machinesFileOp,
  makePlan,
  makeStorePlan,
  nixEnvironment,
  type Plan,
  settingsForRunner
} from './plan.js'
export type { ConfiguredBuilder } from './render.js'
export { checkAll, type FileOp, fileOps, newToken } from './file-agent.js'
export { childRecorder, type Journal, saveJournal } from './state.js'
export { cleanup, undoJournal } from './cleanup.js'
export { announcePlan, configureRunner, exportNixConfig } from './runner-setup.js'
export { closeStoreMasters, type StoreReach } from './store-ping.js'
