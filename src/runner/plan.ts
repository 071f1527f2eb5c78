import { SetupError } from '../inputs/index.js'
import { Input } from '../inputs/index.js'
import { describeRelease, multiplexHazard } from '../nix/index.js'
import { type RunnerFacts, runnerRelease, type ServiceManager } from './probe.js'
import {
  type ConfiguredBuilder,
  renderKnownHosts,
  renderMachines,
  renderMachinesBlock,
  renderNixConfBlock,
  renderNixSettings,
  renderSshConfig,
  type SshFiles
} from './render.js'
import type { Builder, Settings } from '../inputs/index.js'
import type { FileOp } from './file-agent.js'

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

export type Step =
  /** Create the action's own directory (mode 0700); the post step removes it whole. */
  | { kind: 'mkdir'; path: string }
  /** A new file inside the action's own directory. */
  | { kind: 'write'; path: string; mode: number; content: string }
  /**
   * This job's marked block, at the top or the end of a file that other jobs may share (created with `mode`, and its
   * directory, if missing). `restart`: the daemon reads this file only at start, so restart it when the blocks change.
   */
  | {
      kind: 'block'
      path: string
      mode: number
      at: 'top' | 'end'
      content: string
      restart?: ServiceManager
    }
  /**
   * An ssh-agent of the step's own listening on `socket` (in the action's own directory), given `key` on its stdin
   * once the files are written.
   */
  | { kind: 'key-agent'; socket: string; key: string }
  /** Nothing to do now; records that the post step must close the SSH masters living in `controlDir`. */
  | { kind: 'ssh-masters'; aliases: string[]; controlDir: string; configFile?: string }

export interface Plan {
  token: string
  path: ConfigPath
  /** Whether the steps touch root's files (done through sudo unless the action runs as root). */
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

export const NIX_CONF = '/etc/nix/nix.conf'
/** The daemon's machines file when its nix.conf names none: shared by the jobs on the runner, one block each. */
export const SHARED_MACHINES = '/etc/nix/nix-offload.machines'

/**
 * The settings this runner's Nix can take: `multiplex` turned off, with a notice saying why, when that Nix breaks on
 * SSH connection sharing (src/nix/nix-cli.ts `multiplexHazard`). Every plan is made from what this returns.
 */
export function settingsForRunner(
  settings: Settings,
  facts: RunnerFacts
): { settings: Settings; notice?: string } {
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

/** `builders` are the healthy ones from the preflight, with every `auto` value resolved. */
export function makePlan(settings: Settings, builders: Builder[], facts: RunnerFacts, token: string): Plan {
  const sshDir = `${facts.sshHome.replace(/\/$/, '')}/.ssh`
  const workDir = `${sshDir}/${workDirName(token)}`
  const machinesFile = `${workDir}/machines`
  const configured = configure(builders, token)
  // Without a daemon, the runner user's own nix connects.
  const key = keyPlacement(settings, workDir, facts.store === 'local')
  const files: SshFiles = {
    ...key.files,
    knownHostsFile: `${workDir}/known_hosts`,
    // Inside the 0700 work directory, so only the connecting user reaches the sockets; %C keeps the path short.
    ...(settings.multiplex ? { controlPath: controlPathIn(workDir) } : {})
  }
  const machines = renderMachines(configured)
  const steps: Step[] = [
    {
      kind: 'block',
      path: `${sshDir}/config`,
      mode: 0o600,
      at: 'top',
      content: renderSshConfig(token, configured, files)
    },
    { kind: 'mkdir', path: workDir },
    ...key.steps,
    {
      kind: 'write',
      path: files.knownHostsFile,
      mode: 0o644,
      content: renderKnownHosts(settings.knownHosts)
    }
  ]
  if (settings.multiplex) {
    steps.push({
      kind: 'ssh-masters',
      aliases: configured.map(builder => builder.alias),
      controlDir: workDir
    })
  }
  const warnings: string[] = []
  const wantsSubstitutes = settings.buildersUseSubstitutes
  let path: ConfigPath
  let nixConfig = ''

  let machinesPath = machinesFile
  if (facts.store === 'local' || facts.trusted) {
    path = facts.store === 'local' ? 'single-user' : 'trusted-client'
    steps.push({ kind: 'write', path: machinesFile, mode: 0o644, content: machines })
    nixConfig = renderNixSettings(machinesFile, wantsSubstitutes)
  } else {
    const daemonMachinesFile = /^@(\/\S+)$/.exec(facts.daemonBuilders.trim())?.[1]
    const substitutesMissing = wantsSubstitutes && !facts.daemonBuildersUseSubstitutes
    machinesPath = daemonMachinesFile ?? SHARED_MACHINES
    steps.push(machinesBlock(machinesPath, token, configured))
    if (daemonMachinesFile === undefined || (substitutesMissing && facts.serviceManager !== 'none')) {
      if (facts.serviceManager === 'none') {
        throw new SetupError(untrustedWithoutRestartMessage(facts))
      }
      path = 'daemon-config'
      const settingsText = renderNixSettings(
        daemonMachinesFile === undefined ? SHARED_MACHINES : undefined,
        substitutesMissing
      )
      steps.push({
        kind: 'block',
        path: NIX_CONF,
        mode: 0o644,
        at: 'end',
        content: renderNixConfBlock(token, settingsText),
        restart: facts.serviceManager
      })
    } else {
      path = 'machines-file'
      if (substitutesMissing) {
        warnings.push(
          `'${Input.BuildersUseSubstitutes}' is not applied: the nix-daemon does not trust ${facts.userName}, so only its ` +
            `own nix.conf counts, and it reads that only at start, but neither systemd nor launchd runs here to restart ` +
            `it. Builds still offload; the builders get their inputs from the runner. To apply it, add ` +
            `"builders-use-substitutes = true" to ${NIX_CONF} and restart the nix-daemon before this step, or add ` +
            `${facts.userName} to trusted-users.`
        )
      }
    }
  }

  return {
    token,
    path,
    asRoot: facts.store === 'daemon',
    workDir,
    machinesFile: machinesPath,
    machinesShared: machinesPath !== machinesFile,
    builders: configured,
    steps,
    nixConfig,
    warnings
  }
}

/**
 * The work directory's name: the token's first 6 hex digits, since the control sockets inside must fit a Unix socket
 * path (`<dir>/cm-<40 hex>.<16>`, 107 bytes at most; store-early.ts's `tempDirectory` counts on 6). A clash with a
 * directory that is there already fails the mkdir, whose undo is then not recorded.
 */
function workDirName(token: string): string {
  return `nix-offload-${token.slice(0, 6)}`
}

/**
 * The SSH masters' ControlPath in a plan's work directory (an `ssh-masters` step's `controlDir`): `%C`, a hash of the
 * connection, keeps the socket's path short.
 */
export function controlPathIn(dir: string): string {
  return `${dir}/cm-%C`
}

/**
 * The remote-store plan: every file in a 0700 directory of the runner user's under `tempDir` (RUNNER_TEMP), no sudo.
 * Lix splits NIX_SSHOPTS on whitespace (docs/nix.md, "NIX_SSHOPTS splitting"), so the directory's path must have none.
 */
export function makeStorePlan(settings: Settings, builders: Builder[], token: string, tempDir: string): Plan {
  if (/\s/.test(tempDir))
    throw new SetupError(`The temporary directory "${tempDir}" has whitespace in its path.`)
  const workDir = `${tempDir.replace(/\/$/, '')}/${workDirName(token)}`
  const configured = configure(builders, token)
  const key = keyPlacement(settings, workDir, true)
  const files: SshFiles = {
    ...key.files,
    knownHostsFile: `${workDir}/known_hosts`,
    ...(settings.multiplex ? { controlPath: controlPathIn(workDir) } : {}),
    ownMaster: true
  }
  const sshConfigFile = `${workDir}/ssh_config`
  const steps: Step[] = [
    { kind: 'mkdir', path: workDir },
    ...key.steps,
    {
      kind: 'write',
      path: files.knownHostsFile,
      mode: 0o644,
      content: renderKnownHosts(settings.knownHosts)
    },
    { kind: 'write', path: sshConfigFile, mode: 0o600, content: renderSshConfig(token, configured, files) }
  ]
  if (settings.multiplex) {
    steps.push({
      kind: 'ssh-masters',
      aliases: configured.map(builder => builder.alias),
      controlDir: workDir,
      configFile: sshConfigFile
    })
  }
  return {
    token,
    path: 'remote-store',
    asRoot: false,
    workDir,
    machinesFile: '',
    machinesShared: false,
    builders: configured,
    steps,
    nixConfig: '',
    sshConfigFile,
    warnings: []
  }
}

/**
 * Rewrites the plan's machines file to name `builders` only (the canary, one builder at a time): this job's block
 * in a shared machines file, or the whole file of its own.
 */
export function machinesFileOp(plan: Plan, builders: ConfiguredBuilder[]): FileOp {
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

/** The environment for the `nix` commands of this plan: NIX_SSHOPTS names the plan's ssh config (remote-store). */
export function nixEnvironment(plan: Plan, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (plan.sshConfigFile === undefined) return env
  return { ...env, NIX_SSHOPTS: `-F ${plan.sshConfigFile}` }
}

/**
 * Where ssh finds the private key. A daemon connects as root, whose 0700 ~/.ssh keeps a key file from the runner user.
 * When the runner user's own nix connects (`viaAgent`), every `--impure` evaluation and build it runs can read that
 * user's files, and could send a key file out: the key then lives only in an ssh-agent of the step's, fed on stdin, and
 * the ssh config names the agent and the key's public half, which picks that key from it.
 */
function keyPlacement(
  settings: Settings,
  workDir: string,
  viaAgent: boolean
): { files: Pick<SshFiles, 'identityFile' | 'identityAgent'>; steps: Step[] } {
  if (!viaAgent) {
    const identityFile = `${workDir}/key`
    return {
      files: { identityFile },
      steps: [{ kind: 'write', path: identityFile, mode: 0o600, content: settings.privateKey.text }]
    }
  }
  const identityFile = `${workDir}/key.pub`
  const identityAgent = `${workDir}/agent`
  return {
    files: { identityFile, identityAgent },
    steps: [
      { kind: 'write', path: identityFile, mode: 0o644, content: `${settings.privateKey.publicLine}\n` },
      { kind: 'key-agent', socket: identityAgent, key: settings.privateKey.text }
    ]
  }
}

function configure(builders: Builder[], token: string): ConfiguredBuilder[] {
  return builders.map((builder, index): ConfiguredBuilder => {
    const alias = `nix-offload-${token}-${index + 1}`
    return { ...builder, alias, storeUri: storeUriOf(builder, alias) }
  })
}

/**
 * The builder's store as Nix is given it everywhere (machines file, `--store`, `nix copy --from`), and as Nix names
 * the machine in its log: the `remote-program` setting rides in the query, which Nix keeps in that name.
 */
function storeUriOf(builder: Builder, alias: string): string {
  const uri = `${builder.protocol}://${builder.user}@${alias}`
  return builder.remoteProgram === undefined ? uri : `${uri}?remote-program=${builder.remoteProgram}`
}

/** This job's block in a machines file that other jobs share: Nix takes `#` to the end of a line as a comment. */
function machinesBlock(path: string, token: string, builders: ConfiguredBuilder[]): Step {
  return { kind: 'block', path, mode: 0o644, at: 'end', content: renderMachinesBlock(token, builders) }
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
