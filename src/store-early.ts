import { tmpdir } from 'node:os'
import { givenBuilders, type Settings, wantsBuild } from './inputs/index.js'
import { configureRunner, makeStorePlan, type Plan, saveJournal, undoJournal } from './runner/index.js'
import { logInfo } from './base/index.js'

/** A configuration made before its verdict: its files written, then its store check. */
export type Configuring = ReturnType<typeof configureRunner>

/** The remote-store configuration started with the step, and the settings it was made from. */
export interface EarlyStore {
  settings: Settings
  configuring: Configuring
}

/**
 * Starts the remote-store configuration (the action's own files in RUNNER_TEMP, no sudo) and its store check as the
 * step starts, when that strategy may serve the run: the check opens the SSH master, the slowest step of a small
 * build, so it runs beside the runner probe and the preflight instead of after them. It is kept only if the settings
 * stay these once the probe has spoken and the strategy is remote-store (offload.ts); otherwise it is undone quietly.
 */
export function startStoreEarly(settings: Settings, token: string): EarlyStore | undefined {
  if (
    settings.mode !== 'build' ||
    settings.keyMissing ||
    settings.strategy === 'hook' ||
    settings.skipUnhealthy ||
    !wantsBuild(settings)
  )
    return undefined
  const given = givenBuilders(settings.builders)
  // Only an ssh-ng builder's store builds; with another, the strategy refuses remote-store before anything is written.
  if (given === undefined || given.some(builder => builder.protocol !== 'ssh-ng')) return undefined
  let plan: Plan
  try {
    plan = makeStorePlan(settings, given, token, tempDirectory())
  } catch {
    // Said in its usual place, once the strategy is chosen.
    return undefined
  }
  const configuring = configureRunner(plan, undefined, { announce: false })
  configuring.catch(() => undefined)
  return { settings, configuring }
}

/**
 * Takes back a configuration made beside a preflight that then failed, or for a strategy not chosen, so that the post
 * step gets nothing to undo. What could not be undone is a warning here.
 */
export async function undoEarly(configuring: Configuring, announce = true): Promise<void> {
  let journal
  try {
    journal = (await configuring).journal
  } catch {
    // It failed half-way: its journal, saved before each change, is in the state for the post step.
    return
  }
  const { failures } = await undoJournal(journal)
  saveJournal({ asRoot: journal.asRoot, undo: [] })
  if (!announce && failures === 0) return
  logInfo(
    failures === 0
      ? `Undid the configuration made while the preflight ran (${journal.undo.length} change(s)).`
      : `Undid the configuration made while the preflight ran, except ${failures} change(s) (see the warnings above).`
  )
}

/**
 * Where the remote-store plan keeps its files: RUNNER_TEMP, the runner user's own, emptied after every job, unless
 * its path is too long for the SSH control sockets in it (`<dir>/nix-offload-<token>/cm-<40 hex>.<16>`: a Unix
 * socket path has at most 107 bytes; ssh says "too long for Unix domain socket") or has whitespace (NIX_SSHOPTS).
 */
export function tempDirectory(): string {
  const dir = (process.env.RUNNER_TEMP ?? '').replace(/\/$/, '')
  const socketPath = `${dir}/nix-offload-000000/cm-${'0'.repeat(40)}.${'0'.repeat(16)}`
  return dir !== '' && !/\s/.test(dir) && socketPath.length < 104 ? dir : tmpdir()
}
