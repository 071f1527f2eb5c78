import { tmpdir } from 'node:os'
import { logInfo } from './base/index.js'
import { type Builder, configureBuilders, givenBuilders, type Settings, wantsBuild } from './inputs/index.js'
import { remoteStoreObstacle, type RunnerTrust, type StrategyChoice } from './nix/index.js'
import {
  announcePlan,
  configureRunner,
  makePlan,
  makeStorePlan,
  type Plan,
  type RunnerFacts,
  saveJournal,
  undoJournal
} from './runner/index.js'

/** A configuration made before its verdict: its files written, then its store check. */
export type Configuring = ReturnType<typeof configureRunner>

/**
 * The runner's configuration made before the preflight's verdict and the strategy are known, so that its SSH
 * handshake overlaps theirs instead of adding to them; its change and its undo sit here side by side.
 *
 * At most one is made: the remote-store plan (the action's own files in RUNNER_TEMP, no sudo) as the step starts,
 * when that strategy may serve the run; or, once the runner is probed and the strategy is the hook for sure, the hook's
 * plan, when it needs no daemon restart. Whichever the run does not use is undone, so that the post step gets nothing
 * to undo; a builder that fails its preflight still fails the step, the runner as it was.
 */
export class SpeculativeConfiguration {
  /** The hook's plan written early, which the run then uses. */
  hookPlan: Plan | undefined
  private hook: Configuring | undefined
  private store: { settings: Settings; configuring: Configuring } | undefined
  /** Stops the hook plan's store check, which waits up to a minute on a builder whose daemon hangs. */
  private readonly check = new AbortController()

  /**
   * As the step starts: the remote-store configuration and its store check, which opens the SSH master (the slowest
   * step of a small build), beside the runner probe and the preflight.
   */
  static atStepStart(settings: Settings, token: string): SpeculativeConfiguration {
    const speculation = new SpeculativeConfiguration()
    speculation.store = startStore(settings, token)
    return speculation
  }

  /**
   * Once the runner is probed: the hook's plan when the hook is sure; the remote-store configuration kept if that
   * strategy is still likely and the probe left the settings as they were, else undone and, when likely, made again.
   */
  async onceProbed(options: {
    facts: RunnerFacts
    settings: Settings
    token: string
    hookForSure: boolean
    runner: RunnerTrust
  }): Promise<void> {
    const { facts, settings, token } = options
    const given = options.hookForSure && admitsAll(settings) ? givenBuilders(settings.builders) : undefined
    this.hookPlan = given === undefined ? undefined : planWithoutRestart(settings, given, facts, token)
    this.hook =
      this.hookPlan === undefined
        ? undefined
        : configureRunner(this.hookPlan, facts, { announce: true, signal: this.check.signal })
    this.hook?.catch(() => undefined)
    const storeLikely =
      admitsAll(settings) &&
      remoteStoreObstacle(settings, { wantsBuild: wantsBuild(settings), runner: options.runner }) ===
        undefined
    const keep = storeLikely && this.store?.settings === settings
    if (this.store !== undefined && !keep) await this.dropStore()
    if (!keep && storeLikely) this.store = startStore(settings, token)
  }

  /** The preflight failed, or the strategy was refused: everything made early is undone. */
  async abandon(): Promise<void> {
    this.check.abort()
    if (this.hook !== undefined) await undoEarly(this.hook)
    this.hook = undefined
    await this.dropStore()
  }

  /**
   * The configuration `plan` gets: the one made early when it is this plan's, else made now (and the early one
   * undone). The early remote-store configuration wrote the same files (the same builders, in order, and token), and
   * checked each builder through its shell: not what a builder whose key runs only nix-daemon takes.
   */
  async configure(options: {
    plan: Plan
    choice: StrategyChoice
    builders: Builder[]
    facts: RunnerFacts
  }): Promise<Awaited<Configuring>> {
    const { plan, facts } = options
    if (this.hook !== undefined) return this.hook
    const shellOnly = options.builders.every(builder => builder.access === undefined)
    const kept = options.choice.strategy === 'remote-store' && shellOnly ? this.store : undefined
    if (kept === undefined) {
      await this.dropStore()
      return configureRunner(plan, facts)
    }
    announcePlan(plan, facts)
    return kept.configuring
  }

  /** Takes back the early remote-store configuration, quietly: it was made only in case. */
  private async dropStore(): Promise<void> {
    const store = this.store
    this.store = undefined
    if (store !== undefined) await undoEarly(store.configuring, false)
  }
}

/**
 * The remote-store configuration started with the step, when remote-store may serve the run and its builders are
 * known before the preflight (no `auto` value, no `skip-unhealthy`).
 */
function startStore(
  settings: Settings,
  token: string
): { settings: Settings; configuring: Configuring } | undefined {
  if (settings.keyMissing || !admitsAll(settings)) return undefined
  if (remoteStoreObstacle(settings, { wantsBuild: wantsBuild(settings) }) !== undefined) return undefined
  const given = givenBuilders(settings.builders)
  // Only an ssh-ng builder's store builds: with another among them, remote-store is refused or routed around it, so
  // nothing is started for it before the strategy is chosen.
  if (given === undefined || given.some(builder => builder.protocol !== 'ssh-ng')) return undefined
  let plan: Plan
  try {
    plan = makeStorePlan(settings, configureBuilders(given, token), token, tempDirectory())
  } catch {
    // Said in its usual place, once the strategy is chosen.
    return undefined
  }
  const configuring = configureRunner(plan, undefined, { announce: false })
  configuring.catch(() => undefined)
  return { settings, configuring }
}

/**
 * Whether the builders configured are the ones given, whatever the preflight finds of them: `skip-unhealthy` and
 * `min-free-gib` leave some out.
 */
function admitsAll(settings: Settings): boolean {
  return !settings.skipUnhealthy && settings.minFreeGib === 0
}

/**
 * The plan, when the runner can be configured before the preflight's verdict: it needs no daemon restart, and has one
 * builder. A plan that
 * cannot be made says so after the preflight, in its usual place.
 */
function planWithoutRestart(
  settings: Settings,
  builders: Builder[],
  facts: RunnerFacts,
  token: string
): Plan | undefined {
  try {
    // With several builders the machines file's speed-factors follow the load the preflight finds.
    if (builders.length > 1) return undefined
    const plan = makePlan(settings, configureBuilders(builders, token), facts, token)
    return plan.path === 'daemon-config' ? undefined : plan
  } catch {
    return undefined
  }
}

/**
 * Takes back a configuration made beside a preflight that then failed, or for a strategy not chosen, so that the post
 * step gets nothing to undo. What could not be undone is a warning here.
 */
async function undoEarly(configuring: Configuring, announce = true): Promise<void> {
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
