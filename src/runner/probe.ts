import { accessSync, constants, existsSync } from 'node:fs'
import { userInfo } from 'node:os'
import { SetupError } from '../inputs/index.js'
import {
  configShowArgs,
  NIX_FEATURES,
  type NixConfig,
  type NixRelease,
  parseConfigShow,
  parseNixVersion,
  parseStoreInfo,
  settingList,
  type StoreInfo,
  storeInfoArgs
} from '../nix/index.js'
import { runCommand } from '../base/index.js'

export type ServiceManager = 'systemd' | 'launchd' | 'none'

/** What the action found out about the runner before changing anything. */
export interface RunnerFacts {
  /** e.g. "2.8.0"; "unknown" when `nix --version` names none */
  nixVersion: string
  /** Lix numbers its releases apart from Nix and names its commands its own way (src/nix/nix-cli.ts). */
  nixImplementation: NixRelease['implementation']
  /** Determinate Nix's own release (e.g. "3.19.0"), when the runner's Nix is Determinate Nix. */
  determinateVersion?: string
  /** The runner's own Nix system, e.g. x86_64-linux */
  system: string
  /** 'daemon': a multi-user install, root's nix-daemon opens the SSH connections; 'local': single-user. */
  store: 'daemon' | 'local'
  userName: string
  isRoot: boolean
  /** Whether the daemon trusts this user, i.e. accepts client-side `builders` (always true for 'local'). */
  trusted: boolean
  /** The daemon's own `builders` setting, from nix.conf (e.g. "@/etc/nix/machines"). */
  daemonBuilders: string
  daemonBuildersUseSubstitutes: boolean
  serviceManager: ServiceManager
  /** Home directory of the account that opens the SSH connections (root's for a daemon). */
  sshHome: string
  /** Absolute path of `nix`: sudo's secure_path often lacks the runner's Nix (docs/nix.md, "Runner details"). */
  nixPath: string
}

/**
 * The probe asks the local Nix and the user database only: most of a minute without an answer is a hung daemon, not
 * a slow one (the stop's grace and the pipes' drain keep the whole under a minute).
 */
const PROBE_TIMEOUT_MS = 50_000

export async function probeRunner(env: NodeJS.ProcessEnv = process.env): Promise<RunnerFacts> {
  const user = userInfo()
  const isRoot = user.uid === 0
  const [nix, groups, rootHome] = await Promise.all([
    askNix(env),
    isRoot ? Promise.resolve([]) : groupsOf(user.username),
    homeOf('root')
  ])
  const { release, storeCheck, config } = nix
  const store = /^(daemon|unix:)/.test(storeCheck.url) ? 'daemon' : 'local'
  const system = settingString(config, 'system')

  let trusted = true
  if (store === 'daemon' && !isRoot) {
    trusted = storeCheck.trusted ?? isTrustedUser(user.username, groups, settingList(config, 'trusted-users'))
  }

  const facts: RunnerFacts = {
    nixVersion: release.version || 'unknown',
    nixImplementation: release.implementation,
    system,
    store,
    userName: user.username,
    isRoot,
    trusted,
    daemonBuilders: settingString(config, 'builders'),
    daemonBuildersUseSubstitutes: config['builders-use-substitutes'] === true,
    serviceManager: detectServiceManager(),
    sshHome: store === 'daemon' ? rootHome : user.homedir,
    nixPath: findOnPath('nix', env.PATH ?? '') ?? 'nix'
  }
  if (release.determinate !== undefined) facts.determinateVersion = release.determinate
  return facts
}

/**
 * Whether root's changes (a plan's or a journal's `asRoot`) go through sudo: unless this process is root already.
 * The one place that decides it: the plan's batch, its store check and the post step's undo all ask it.
 */
export function viaSudo(owner: { asRoot: boolean }): boolean {
  return owner.asRoot && process.getuid?.() !== 0
}

/** The runner's Nix as the version rules in src/nix/nix-cli.ts take it. */
export function runnerRelease(facts: RunnerFacts): NixRelease {
  const release: NixRelease = { implementation: facts.nixImplementation, version: facts.nixVersion }
  if (facts.determinateVersion !== undefined) release.determinate = facts.determinateVersion
  return release
}

/**
 * `nix --version` first, because it decides how the other two questions are spelled (src/nix/nix-cli.ts); then the store
 * check and the daemon's config at once. `--version` opens no store, so asking it first costs the probe little;
 * asking the new spellings while it runs would cost Nix before 2.19 more, as both fail there and are asked again
 * (bench/README.md, "Figures behind choices in the code").
 */
async function askNix(
  env: NodeJS.ProcessEnv
): Promise<{ release: NixRelease; storeCheck: StoreInfo; config: NixConfig }> {
  const release = parseNixVersion(await nixOutput(['--version'], env))
  // The daemon reads /etc/nix/nix.conf only: leave out what this process alone sees (NIX_CONFIG, user config).
  const daemonView: NodeJS.ProcessEnv = { ...env, NIX_USER_CONF_FILES: '' }
  delete daemonView.NIX_CONFIG
  const checkArgs = storeInfoArgs(release)
  const [check, configText] = await Promise.all([
    runCommand('nix', [...NIX_FEATURES, ...checkArgs], { env, timeoutMs: PROBE_TIMEOUT_MS }),
    nixOutput([...NIX_FEATURES, ...configShowArgs(release)], daemonView)
  ])
  if (check.code !== 0) {
    throw new SetupError(
      `Cannot reach the runner's Nix store (\`nix ${checkArgs.join(' ')}\` failed: ${lastLine(check.stderr)}). ` +
        'Is Nix installed and, on a multi-user install, is the nix-daemon running?',
      'runner'
    )
  }
  return {
    release,
    storeCheck: parseStoreInfo(check.stdout.toString(), check.stderr),
    config: parseConfigShow(configText)
  }
}

/** Nix's rule in `nix-daemon`: a user is trusted if named, if in a named @group, or if `*` is listed. */
export function isTrustedUser(user: string, groups: string[], trustedUsers: string[]): boolean {
  return trustedUsers.some(
    entry => entry === '*' || entry === user || (entry.startsWith('@') && groups.includes(entry.slice(1)))
  )
}

function settingString(config: NixConfig, name: string): string {
  const value = config[name]
  return typeof value === 'string' ? value : Array.isArray(value) ? value.join(' ') : String(value ?? '')
}

function findOnPath(program: string, path: string): string | undefined {
  for (const directory of path.split(':')) {
    if (directory === '') continue
    const candidate = `${directory}/${program}`
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here; try the next directory
    }
  }
  return undefined
}

function detectServiceManager(): ServiceManager {
  if (process.platform === 'darwin') return 'launchd'
  return existsSync('/run/systemd/system') ? 'systemd' : 'none'
}

async function nixOutput(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  let result
  try {
    result = await runCommand('nix', args, { env, timeoutMs: PROBE_TIMEOUT_MS })
  } catch {
    throw new SetupError(
      'Nix is not installed on the runner (no `nix` on PATH): install it in an earlier step.',
      'runner'
    )
  }
  if (result.code !== 0)
    throw new SetupError(`\`nix ${args.join(' ')}\` failed: ${lastLine(result.stderr)}`, 'runner')
  return result.stdout.toString()
}

/** How the probe's questions to the system are run: its environment and time bound (tests shorten both). */
export interface SystemQuestion {
  env?: NodeJS.ProcessEnv
  timeoutMs?: number
}

/** The output of a question to the system (the user database), or a SetupError saying which one hung. */
async function askSystem(command: string, args: string[], question: SystemQuestion): Promise<string> {
  const { env = process.env, timeoutMs = PROBE_TIMEOUT_MS } = question
  const result = await runCommand(command, args, { env, timeoutMs })
  if (result.timedOut === true) {
    throw new SetupError(
      `\`${[command, ...args].join(' ')}\` hung: no answer within ${timeoutMs / 1000} s. The runner's user database ` +
        '(NSS: LDAP, SSSD) is not answering; fix it or use a runner whose accounts are local.',
      'runner'
    )
  }
  return result.stdout.toString()
}

export async function groupsOf(user: string, question: SystemQuestion = {}): Promise<string[]> {
  const groups = await askSystem('id', ['-Gn', user], question)
  return groups.trim().split(/\s+/).filter(Boolean)
}

/** The home directory from the user database, which is what ssh reads its config from (not $HOME). */
export async function homeOf(user: string, question: SystemQuestion = {}): Promise<string> {
  const home = (await askSystem('sh', ['-c', `echo ~${user}`], question)).trim()
  if (!home.startsWith('/')) throw new SetupError(`Cannot find the home directory of ${user}.`, 'runner')
  return home
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? ''
}
