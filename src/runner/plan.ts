import { Input, SetupError } from '../inputs/index.js'
import type { ConfiguredBuilder, Settings } from '../inputs/index.js'
import { describeRelease, multiplexHazard } from '../nix/index.js'
import { type ConfigPath, nixConfigFor } from './nix-config.js'
import { type RunnerFacts, runnerRelease } from './probe.js'
import { type BlockStep, knownHostsFile, sshConfigBlock, sshConfigFile, type SshFiles } from './ssh-config.js'
import { controlPathIn, mastersSteps, type MastersStep } from './ssh-masters.js'
import { type KeyFiles, type WorkDirStep, workDirIn, workDirWithKey } from './work-dir.js'

export type { ConfigPath } from './nix-config.js'

/** One change to the runner, as plain data; each resource's module makes its own and says how it is undone. */
export type Step = WorkDirStep | BlockStep | MastersStep

export interface Plan {
  token: string
  path: ConfigPath
  /** Whether the steps touch root's files (done through sudo unless the action runs as root: probe.ts `viaSudo`). */
  asRoot: boolean
  workDir: string
  /** The machines file the offloading process reads (rewritten per builder by the canary). */
  machinesFile: string
  /** Whether that file is shared with other jobs (the daemon's), so that this job owns only its block in it. */
  machinesShared: boolean
  builders: ConfiguredBuilder[]
  steps: Step[]
  /** Lines for NIX_CONFIG, for this build and later steps; empty when the daemon's own config carries them. */
  nixConfig: string
  /** remote-store: the ssh config file the runner's `nix` is given (`NIX_SSHOPTS=-F <file>`). */
  sshConfigFile?: string
  warnings: string[]
}

/**
 * The settings this runner's Nix can take: `multiplex` turned off, with a notice saying why, when that Nix breaks on
 * SSH connection sharing (src/nix/nix-cli.ts `multiplexHazard`). Every plan is made from what this returns.
 */
export function settingsForRunner<S extends Settings>(
  settings: S,
  facts: RunnerFacts
): { settings: S; notice?: string } {
  if (!settings.multiplex) return { settings }
  const release = runnerRelease(facts)
  const hazard = multiplexHazard(release)
  if (hazard === undefined) return { settings }
  return {
    settings: { ...settings, multiplex: false },
    notice:
      `'${Input.Multiplex}' is turned off for this run: the runner's ${describeRelease(release)} ${hazard.reason} ` +
      `(${hazard.bug}, fixed in ${hazard.fixedIn}). Builds still offload, each over its own SSH connection. ` +
      `Set '${Input.Multiplex}: false' to silence this notice.`
  }
}

/**
 * The plan for a daemon's root or a single-user install's user: the ssh config block at the top of their
 * ~/.ssh/config, the work directory beside it, the masters, and what makes their Nix use the builders. `builders` are
 * the healthy ones from the preflight, with every `auto` value resolved.
 */
export function makePlan(
  settings: Settings,
  builders: ConfiguredBuilder[],
  facts: RunnerFacts,
  token: string
): Plan {
  const sshDir = `${facts.sshHome.replace(/\/$/, '')}/.ssh`
  const workDir = workDirIn(sshDir, token)
  // Without a daemon, the runner user's own nix connects.
  const key = workDirWithKey(settings, workDir, facts.store === 'local')
  const files = sshFilesIn(workDir, key.files, settings.multiplex)
  const ownMachinesFile = `${workDir}/machines`
  const nix = nixConfigFor({ settings, facts, token, builders, ownMachinesFile })
  return {
    token,
    path: nix.path,
    asRoot: facts.store === 'daemon',
    workDir,
    machinesFile: nix.machinesFile,
    machinesShared: nix.machinesFile !== ownMachinesFile,
    builders,
    steps: [
      sshConfigBlock(sshDir, token, builders, files),
      ...key.steps,
      knownHostsFile(settings, files),
      ...mastersSteps(settings.multiplex, builders, workDir),
      ...nix.steps
    ],
    nixConfig: nix.nixConfig,
    warnings: nix.warnings
  }
}

/**
 * The remote-store plan: every file in a 0700 directory of the runner user's under `tempDir` (RUNNER_TEMP), no sudo.
 * Lix splits NIX_SSHOPTS on whitespace (docs/nix.md, "NIX_SSHOPTS splitting"), so the directory's path must have none.
 */
export function makeStorePlan(
  settings: Settings,
  builders: ConfiguredBuilder[],
  token: string,
  tempDir: string
): Plan {
  if (/\s/.test(tempDir))
    throw new SetupError(`The temporary directory "${tempDir}" has whitespace in its path.`, 'runner')
  const workDir = workDirIn(tempDir, token)
  const key = workDirWithKey(settings, workDir, true)
  const files: SshFiles = { ...sshFilesIn(workDir, key.files, settings.multiplex), ownMaster: true }
  const configFile = `${workDir}/ssh_config`
  return {
    token,
    path: 'remote-store',
    asRoot: false,
    workDir,
    machinesFile: '',
    machinesShared: false,
    builders,
    steps: [
      ...key.steps,
      knownHostsFile(settings, files),
      sshConfigFile(configFile, token, builders, files),
      ...mastersSteps(settings.multiplex, builders, workDir, configFile)
    ],
    nixConfig: '',
    sshConfigFile: configFile,
    warnings: []
  }
}

/** The files the ssh config names, all in the work directory. */
function sshFilesIn(workDir: string, key: KeyFiles, multiplex: boolean): SshFiles {
  return {
    ...key,
    knownHostsFile: `${workDir}/known_hosts`,
    ...(multiplex ? { controlPath: controlPathIn(workDir) } : {})
  }
}

/** The environment for the `nix` commands of this plan: NIX_SSHOPTS names the plan's ssh config (remote-store). */
export function nixEnvironment(plan: Plan, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (plan.sshConfigFile === undefined) return env
  return { ...env, NIX_SSHOPTS: `-F ${plan.sshConfigFile}` }
}
