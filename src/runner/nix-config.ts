import * as core from '@actions/core'
import { readFileSync } from 'node:fs'
import { Input, loadedSpeedFactors, SetupError } from '../inputs/index.js'
import type { ConfiguredBuilder, Settings } from '../inputs/index.js'
import type { FileOp } from './file-agent.js'
import type { RunnerFacts } from './probe.js'
import { type BlockStep, markedBlock } from './ssh-config.js'
import type { SharedFiles } from './state.js'
import type { WriteStep } from './work-dir.js'

/**
 * How the offloading Nix learns of the builders, its two resources side by side: the machines lines (a file in the
 * work directory, or this job's block in the daemon's machines file, rewritten by the canary) and the settings that
 * name them (NIX_CONFIG, or this job's block at the end of nix.conf, with a daemon restart). Both blocks are marked
 * blocks (ssh-config.ts), taken back by the post step's block removal.
 */

/**
 * How the builders reach the process that offloads:
 * - `trusted-client`: the daemon trusts the runner user, so NIX_CONFIG carries `builders` (nothing in /etc/nix changes);
 * - `machines-file`: the daemon ignores an untrusted client's `builders`, but re-reads the machines file its own
 *   `builders = @file` names at every build, so writing that file needs no restart;
 * - `daemon-config`: the daemon's nix.conf must change, which it reads only at start: edit and restart it;
 * - `single-user`: no daemon; `nix` itself offloads as the runner user, NIX_CONFIG carries everything;
 * - `remote-store`: the runner's own `nix copy --from ssh-ng://…` (or `nix build --store`) is the SSH client: an ssh
 *   config file of the action's, given to it with NIX_SSHOPTS, and nothing of root's or in /etc/nix.
 */
export type ConfigPath = 'trusted-client' | 'machines-file' | 'daemon-config' | 'single-user' | 'remote-store'

export const NIX_CONF = '/etc/nix/nix.conf'
/** The daemon's machines file when its nix.conf names none: shared by the jobs on the runner, one block each. */
export const SHARED_MACHINES = '/etc/nix/nix-offload.machines'
/** Nix's `builders` when nix.conf sets none: `@` and this file, in the configuration directory /etc/nix. */
const DEFAULT_MACHINES = '/etc/nix/machines'

/** What the plan does so that the offloading Nix uses the builders. */
export interface NixConfigPlan {
  path: Exclude<ConfigPath, 'remote-store'>
  steps: (WriteStep | BlockStep)[]
  /** The machines file the offloading process reads. */
  machinesFile: string
  /** Lines for NIX_CONFIG, for this build and later steps; empty when the daemon's own config carries them. */
  nixConfig: string
  warnings: string[]
}

/** `ownMachinesFile`: in the work directory, for a Nix that takes the client's `builders`. */
export function nixConfigFor(job: {
  settings: Settings
  facts: RunnerFacts
  token: string
  builders: ConfiguredBuilder[]
  ownMachinesFile: string
}): NixConfigPlan {
  const { settings, facts, builders, ownMachinesFile } = job
  if (facts.store === 'local' || facts.trusted) {
    return {
      path: facts.store === 'local' ? 'single-user' : 'trusted-client',
      steps: [{ kind: 'write', path: ownMachinesFile, mode: 0o644, content: renderMachines(builders) }],
      machinesFile: ownMachinesFile,
      nixConfig: renderNixSettings(ownMachinesFile, settings.buildersUseSubstitutes),
      warnings: []
    }
  }
  return daemonConfigFor(job)
}

/** The daemon ignores this client's settings: a block in its machines file, and in its nix.conf if that must change. */
function daemonConfigFor(job: {
  settings: Settings
  facts: RunnerFacts
  token: string
  builders: ConfiguredBuilder[]
}): NixConfigPlan {
  const { settings, facts, token } = job
  const daemonMachinesFile = /^@(\/\S+)$/.exec(facts.daemonBuilders.trim())?.[1]
  const substitutesMissing = settings.buildersUseSubstitutes && !facts.daemonBuildersUseSubstitutes
  const machinesFile = daemonMachinesFile ?? SHARED_MACHINES
  const machines = machinesBlock(machinesFile, token, job.builders)
  const common = { machinesFile, nixConfig: '' }
  if (daemonMachinesFile !== undefined && !(substitutesMissing && facts.serviceManager !== 'none')) {
    const warnings = substitutesMissing ? [substitutesNotApplied(facts)] : []
    return { path: 'machines-file', steps: [machines], ...common, warnings }
  }
  if (facts.serviceManager === 'none') throw new SetupError(untrustedWithoutRestartMessage(facts), 'runner')
  const settingsText = renderNixSettings(
    daemonMachinesFile === undefined ? SHARED_MACHINES : undefined,
    substitutesMissing
  )
  const nixConf: BlockStep = {
    kind: 'block',
    path: NIX_CONF,
    mode: 0o644,
    at: 'end',
    content: renderNixConfBlock(token, settingsText),
    restart: facts.serviceManager
  }
  return { path: 'daemon-config', steps: [machines, nixConf], ...common, warnings: [] }
}

/** This job's block in a machines file that other jobs share: Nix takes `#` to the end of a line as a comment. */
function machinesBlock(path: string, token: string, builders: ConfiguredBuilder[]): BlockStep {
  return { kind: 'block', path, mode: 0o644, at: 'end', content: renderMachinesBlock(token, builders) }
}

/**
 * Rewrites the plan's machines file to name `builders` only (the canary, one builder at a time): this job's block
 * in a shared machines file, or the whole file of its own.
 */
export function machinesFileOp(
  plan: { token: string; machinesFile: string; machinesShared: boolean },
  builders: ConfiguredBuilder[]
): FileOp {
  if (plan.machinesShared)
    return {
      op: 'set-block',
      path: plan.machinesFile,
      token: plan.token,
      text: renderMachinesBlock(plan.token, builders)
    }
  return {
    op: 'overwrite',
    path: plan.machinesFile,
    data: Buffer.from(renderMachines(builders)).toString('base64')
  }
}

/**
 * The Nix machines file. A port in the URI only works from Nix 2.31 and field 8 (base64 host key) is written without
 * `[host]:port`, so the port and the pinned key live in the ssh Host alias instead (docs/nix.md, "The machines
 * format").
 */
export function renderMachines(builders: ConfiguredBuilder[]): string {
  const speedFactors = loadedSpeedFactors(builders)
  return (
    builders
      .map((builder, index) => renderMachineLine({ ...builder, speedFactor: speedFactors[index] ?? 1 }))
      .join('\n') + '\n'
  )
}

/** The machines lines as this job's marked block, in a machines file other jobs share. */
export function renderMachinesBlock(token: string, builders: ConfiguredBuilder[]): string {
  return markedBlock(token, renderMachines(builders))
}

export function renderMachineLine(builder: ConfiguredBuilder): string {
  const list = (items: string[]): string => (items.length === 0 ? '-' : items.join(','))
  return [
    builder.storeUri,
    list(builder.systems),
    '-',
    String(builder.maxJobs),
    String(builder.speedFactor),
    list(builder.supportedFeatures),
    list(builder.mandatoryFeatures),
    '-'
  ].join(' ')
}

/** Settings the action gives Nix, as nix.conf / NIX_CONFIG lines. */
export function renderNixSettings(machinesFile: string | undefined, buildersUseSubstitutes: boolean): string {
  const lines: string[] = []
  if (machinesFile !== undefined) lines.push(`builders = @${machinesFile}`)
  if (buildersUseSubstitutes) lines.push('builders-use-substitutes = true')
  return lines.join('\n')
}

/** Appended to nix.conf: later lines override earlier ones there. */
export function renderNixConfBlock(token: string, settings: string): string {
  return markedBlock(token, `${settings}\n`)
}

/** Exports NIX_CONFIG with the plan's settings (trusted-client path) to this step's builds and to later steps. */
export function exportNixConfig(plan: { nixConfig: string }): void {
  if (plan.nixConfig === '') return
  const existing = process.env.NIX_CONFIG ?? ''
  core.exportVariable('NIX_CONFIG', existing === '' ? plan.nixConfig : `${existing}\n${plan.nixConfig}`)
}

/**
 * The shared files a journal's blocks may be in: nix.conf, the action's own machines file, Nix's default one (the
 * daemon reads `@/etc/nix/machines` when its nix.conf sets no `builders`), and each machines file nix.conf names now.
 */
export function sharedFiles(): SharedFiles {
  let conf = ''
  try {
    conf = readFileSync(NIX_CONF, 'utf8')
  } catch {
    // No nix.conf to read: only the default machines file is the daemon's.
  }
  const named = [...conf.matchAll(/^\s*builders\s*=\s*@(\/\S+)\s*$/gm)].map(match => match[1] ?? '')
  return { nixConf: NIX_CONF, machines: [SHARED_MACHINES, DEFAULT_MACHINES, ...named] }
}

function substitutesNotApplied(facts: RunnerFacts): string {
  return (
    `'${Input.BuildersUseSubstitutes}' is not applied: the nix-daemon does not trust ${facts.userName}, so only its ` +
    `own nix.conf counts, and it reads that only at start, but neither systemd nor launchd runs here to restart ` +
    `it. Builds still offload; the builders get their inputs from the runner. To apply it, add ` +
    `"builders-use-substitutes = true" to ${NIX_CONF} and restart the nix-daemon before this step, or add ` +
    `${facts.userName} to trusted-users.`
  )
}

function untrustedWithoutRestartMessage(facts: RunnerFacts): string {
  return (
    `Cannot configure the builders: the nix-daemon does not trust the runner user ${facts.userName} (so it ignores ` +
    `builders passed by the client) and ${NIX_CONF} sets "builders = ${facts.daemonBuilders}" instead of a machines ` +
    `file, so the daemon's own configuration must change, which takes a restart, but neither systemd nor launchd runs ` +
    `here. Fix: add "trusted-users = root ${facts.userName}" to ${NIX_CONF} (or remove its "builders" line) and ` +
    `restart the nix-daemon before this step.`
  )
}
