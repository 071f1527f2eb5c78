/**
 * runner: the runner's side. The read-only probe of its Nix, and whether root's changes go through sudo (probe.ts);
 * the pure plan of every change (plan.ts), made of one module per resource, each with its change and its undo side by
 * side: the work directory and the key agent in it (work-dir.ts), the ssh config block that defines the
 * configured builders' aliases (ssh-config.ts), the machines block and the nix.conf block (nix-config.ts), the SSH masters and the store check
 * that opens them (ssh-masters.ts). Applying the plan with a journal of undo steps, undoing it, and the post step
 * (apply.ts), through the batched sudo file agent (file-agent.ts); the journal saved for the post step, checked when
 * read (state.ts).
 * May import: base, inputs, nix.
 */

export { isTrustedUser, probeRunner, type RunnerFacts, runnerRelease, viaSudo } from './probe.js'
export { makePlan, makeStorePlan, nixEnvironment, type Plan, settingsForRunner } from './plan.js'
export { type ConfigPath, exportNixConfig, machinesFileOp } from './nix-config.js'
export { checkAll, type FileOp, fileOps, newToken } from './file-agent.js'
export { childRecorder, type Journal, saveJournal } from './state.js'
export { announcePlan, cleanup, configureRunner, undoJournal } from './apply.js'
export { type SshMasters, type StoreReach } from './ssh-masters.js'
