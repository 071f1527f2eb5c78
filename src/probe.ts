import { accessSync, constants, existsSync } from 'node:fs'
import { userInfo } from 'node:os'
import { SetupError } from './errors.js'
import { runCommand } from './process.js'

export type ServiceManager = 'systemd' | 'launchd' | 'none'

/** What the action found out about the runner before changing anything. */
export interface RunnerFacts {
  /** e.g. "2.8.0" */
  nixVersion: string
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
  /** Absolute path of `nix`: sudo's secure_path often lacks the runner's Nix (NIX-FACTS.md). */
  nixPath: string
}

/** Runs `nix` with the features the action needs, whatever the runner's config enables. */
export const NIX_FEATURES = ['--extra-experimental-features', 'nix-command flakes']

export async function probeRunner(env: NodeJS.ProcessEnv = process.env): Promise<RunnerFacts> {
  const user = userInfo()
  const isRoot = user.uid === 0
  // The daemon reads /etc/nix/nix.conf only: leave out what this process alone sees (NIX_CONFIG, user config).
  const daemonView: NodeJS.ProcessEnv = { ...env, NIX_USER_CONF_FILES: '' }
  delete daemonView.NIX_CONFIG
  // Independent questions, asked at once: each `nix` start costs about 0.1 s.
  const [version, ping, configText, groups, rootHome] = await Promise.all([
    nixOutput(['--version'], env),
    runCommand('nix', [...NIX_FEATURES, 'store', 'ping'], { env }),
    nixOutput([...NIX_FEATURES, 'show-config', '--json'], daemonView),
    isRoot ? Promise.resolve([]) : groupsOf(user.username),
    homeOf('root')
  ])
  const nixVersion = /(\d+\.\d+(?:\.\d+)?)/.exec(version)?.[1] ?? 'unknown'
  if (ping.code !== 0) {
    throw new SetupError(
      `Cannot reach the runner's Nix store (\`nix store ping\` failed: ${lastLine(ping.stderr)}). ` +
        'Is Nix installed and, on a multi-user install, is the nix-daemon running?'
    )
  }
  const pingText = ping.stderr + ping.stdout.toString()
  const storeUrl = /Store URL:\s*(\S+)/.exec(pingText)?.[1] ?? ''
  const store = /^(daemon|unix:)/.test(storeUrl) ? 'daemon' : 'local'
  const config = parseShowConfig(configText)
  const system = settingString(config, 'system')

  const reportedTrust = /Trusted:\s*(\d)/.exec(pingText)?.[1]
  let trusted = true
  if (store === 'daemon' && !isRoot) {
    trusted =
      reportedTrust !== undefined
        ? reportedTrust === '1'
        : isTrustedUser(user.username, groups, settingList(config, 'trusted-users'))
  }

  return {
    nixVersion,
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
}

/** Nix's rule in `nix-daemon`: a user is trusted if named, if in a named @group, or if `*` is listed. */
export function isTrustedUser(user: string, groups: string[], trustedUsers: string[]): boolean {
  return trustedUsers.some(
    entry => entry === '*' || entry === user || (entry.startsWith('@') && groups.includes(entry.slice(1)))
  )
}

type ShowConfig = Record<string, unknown>

export function parseShowConfig(json: string): ShowConfig {
  const parsed: unknown = JSON.parse(json)
  const values: ShowConfig = {}
  if (typeof parsed !== 'object' || parsed === null) return values
  for (const [name, entry] of Object.entries(parsed)) {
    // Nix 2.8 prints {"name": {"value": …, …}}; some older versions print {"name": value}.
    values[name] = typeof entry === 'object' && entry !== null && 'value' in entry ? entry.value : entry
  }
  return values
}

function settingString(config: ShowConfig, name: string): string {
  const value = config[name]
  return typeof value === 'string' ? value : Array.isArray(value) ? value.join(' ') : String(value ?? '')
}

/** A list setting from `nix show-config --json`: an array, or a space-separated string on some versions. */
export function settingList(config: ShowConfig, name: string): string[] {
  const value = config[name]
  if (Array.isArray(value)) return value.map(String)
  return typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : []
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
    result = await runCommand('nix', args, { env })
  } catch {
    throw new SetupError(
      'Nix is not installed on the runner (no `nix` on PATH): install it in an earlier step.'
    )
  }
  if (result.code !== 0) throw new SetupError(`\`nix ${args.join(' ')}\` failed: ${lastLine(result.stderr)}`)
  return result.stdout.toString()
}

async function groupsOf(user: string): Promise<string[]> {
  const result = await runCommand('id', ['-Gn', user])
  return result.stdout.toString().trim().split(/\s+/).filter(Boolean)
}

/** The home directory from the user database, which is what ssh reads its config from (not $HOME). */
async function homeOf(user: string): Promise<string> {
  const result = await runCommand('sh', ['-c', `echo ~${user}`])
  const home = result.stdout.toString().trim()
  if (!home.startsWith('/')) throw new SetupError(`Cannot find the home directory of ${user}.`)
  return home
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? ''
}
