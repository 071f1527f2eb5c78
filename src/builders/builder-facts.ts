import { shellQuote } from '../base/index.js'
import { CONFIG_SHOW_SHELL, parseConfigShow, parseNixVersion, settingList } from '../nix/index.js'
import { type BuilderAccess, FEATURE, nixBeside, type Protocol, SYSTEM } from '../inputs/index.js'
import type { DaemonGreeting, StoreRoundTrip } from './nix-protocol.js'

/** What a builder's own Nix says about itself, read over SSH as the builder user. */
export interface BuilderFacts {
  /** Whether the key runs shell commands there, or only one of Nix's programs. */
  access: BuilderAccess
  /** What that access cannot tell, in words for the summary (empty with a shell). */
  unasked: string[]
  /** The protocol version the forced program spoke, e.g. "1.34" (nix-daemon) or "2.7" (nix-store --serve). */
  protocolVersion?: string
  /** What a forced nix-daemon said of the user (protocol 1.35+); undefined when it did not say. */
  trusted?: boolean
  /** The store's round trip over a forced nix-daemon, in milliseconds. */
  storeMs?: number
  /** The program Nix runs on the builder (`nix-daemon` for ssh-ng, `nix-store` for ssh) and whether PATH has it. */
  program: string
  programFound: boolean
  /** e.g. "2.8.0"; empty when unknown */
  nixVersion: string
  user: string
  groups: string[]
  cores?: number
  system?: string
  extraPlatforms: string[]
  systemFeatures: string[]
  trustedUsers?: string[]
  /** Free bytes in the filesystem of the builder's /nix/store, where `df` can tell. */
  storeFreeBytes?: number
  /** The 1-minute load average (Linux /proc/loadavg, macOS `sysctl vm.loadavg`). */
  loadAverage?: number
  /** Build users of its daemon with a process running (docs/nix.md, "Builders chosen by load"). */
  runningBuilds?: number
  /**
   * Whether the builder user's store (its nix-daemon, on a multi-user builder) answered `nix store ping`, and if not,
   * why (its last line, or that it did not answer before the preflight gave up); undefined when the check could not
   * run (no `nix` on the builder user's PATH).
   */
  storeAnswers?: boolean
  storeError?: string
}

const MARK = '@@nix-offload'

/**
 * Two commands, run at once over one connection, whose outputs in this order make the answer parseFacts reads: what
 * the builder user is and has and its Nix's config, then whether its store answers. Each is run by the builder user's
 * login shell exactly as Nix's own `nix-daemon --stdio` or `nix-store --serve` will be, so `command -v` sees the same
 * non-interactive PATH. Each starts `nix` there (the store question the slowest), so the store's answer comes beside
 * the rest, not after it. Not three: a third `nix` start slows a builder that shares its cores with the SSH master's
 * handshake (bench/README.md, "Figures behind choices in the code").
 */
export function factsCommands(protocol: Protocol, path?: string): [about: string, store: string] {
  const program = remoteProgram(protocol, path)
  const about = [
    `p=${shellQuote(program)}`,
    // A path: `command -v` in dash says yes to any file there, executable or not.
    `if ${path === undefined ? 'command -v "$p" >/dev/null 2>&1' : '[ -f "$p" ] && [ -x "$p" ]'}; then echo "${MARK} found yes"; else echo "${MARK} found no"; fi`,
    // No `head`: parseFacts reads the first line only, and a PATH without Nix may lack the other tools too.
    `echo "${MARK} version $("$p" --version 2>/dev/null)"`,
    `echo "${MARK} user $(id -un)"`,
    `echo "${MARK} groups $(id -Gn)"`,
    `echo "${MARK} cores $(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null)"`,
    // POSIX df: the 4th column of the last line is the space available, in 1024-byte blocks.
    `echo "${MARK} free $(df -Pk /nix/store 2>/dev/null | tail -n 1 | awk '{print $4}')"`,
    `echo "${MARK} loadavg $(cat /proc/loadavg 2>/dev/null || sysctl -n vm.loadavg 2>/dev/null)"`,
    // The users that own a process; parseFacts counts the build users of this builder's daemon among them. procps
    // prints a name longer than 8 characters as its uid unless given a width; BSD ps takes no width.
    `echo "${MARK} psusers $( (ps -A -o user:64= 2>/dev/null || ps -A -o user= 2>/dev/null) | sort -u | head -n 2000 | tr '\\n' ' ')"`
  ]
  const config = [`echo "${MARK} config"`, CONFIG_SHOW_SHELL, 'echo']
  // The store that `nix-daemon --stdio` (or `nix-store --serve`) will serve. A daemon that accepts connections but
  // never answers leaves no `store` line, and the preflight's timeout says so.
  const store = [
    `e=$(nix --extra-experimental-features nix-command store ping 2>&1 >/dev/null </dev/null)`,
    `echo "${MARK} store $? $(printf '%s' "$e" | tail -n 1)"`
  ]
  const nix = besideProgram(path)
  // /bin/sh by path: a builder user's PATH may name no directory at all (sshd's `SetEnv PATH=…`). The preflight
  // writes the worker protocol's magic to every command's stdin, for a builder that runs only nix-daemon whatever the
  // command: no shell may read it as input.
  const command = (lines: string[]): string =>
    `/bin/sh -c ${shellQuote(['exec </dev/null', ...nix, ...lines].join('\n'))}`
  return [command([...about, ...config]), command(store)]
}

/**
 * With `remote-program` set, every `nix` the commands run is the one beside that program, when it is there: the
 * builder user's PATH may have none. `command` skips the function itself.
 */
function besideProgram(path: string | undefined): string[] {
  if (path === undefined) return []
  return [`n=${shellQuote(nixBeside(path))}`, '[ -x "$n" ] || n=nix', 'nix() { command "$n" "$@"; }']
}

/**
 * The program Nix runs there: `path`, the builder's `remote-program`, else `nix-daemon` (ssh-ng) or `nix-store` (ssh)
 * from PATH.
 */
export function remoteProgram(protocol: Protocol, path?: string): string {
  return path ?? (protocol === 'ssh-ng' ? 'nix-daemon' : 'nix-store')
}

export function parseFacts(protocol: Protocol, output: string, path?: string): BuilderFacts {
  const facts: BuilderFacts = {
    access: 'shell',
    unasked: [],
    program: remoteProgram(protocol, path),
    programFound: false,
    nixVersion: '',
    user: '',
    groups: [],
    extraPlatforms: [],
    systemFeatures: []
  }
  const [head = '', rest = ''] = output.split(`${MARK} config\n`)
  const [config = '', store] = rest.split(`\n${MARK} store `)
  const answer = /^(\d+) ?(.*)/.exec(store ?? '')
  // 127: no `nix` on the builder user's PATH, which says nothing about its store.
  if (answer !== null && answer[1] !== '127') {
    facts.storeAnswers = answer[1] === '0'
    if (!facts.storeAnswers) facts.storeError = (answer[2] ?? '').trim() || `exit code ${answer[1] ?? '?'}`
  }
  let processUsers: string[] | undefined
  for (const line of head.split('\n')) {
    if (!line.startsWith(`${MARK} `)) continue
    const [key = '', ...rest] = line.slice(MARK.length + 1).split(' ')
    const value = rest.join(' ').trim()
    if (key === 'found') facts.programFound = value === 'yes'
    if (key === 'version') facts.nixVersion = parseNixVersion(value).version
    if (key === 'user') facts.user = value
    if (key === 'groups') facts.groups = value.split(/\s+/).filter(Boolean)
    if (key === 'cores' && /^\d+$/.test(value)) facts.cores = Number(value)
    if (key === 'free' && /^\d+$/.test(value)) facts.storeFreeBytes = Number(value) * 1024
    if (key === 'loadavg') setLoadAverage(facts, value)
    if (key === 'psusers' && value !== '') processUsers = value.split(/\s+/)
  }
  const jsonStart = config.indexOf('{')
  if (jsonStart >= 0) {
    try {
      const settings = parseConfigShow(config.slice(jsonStart))
      const list = (name: string): string[] => settingList(settings, name)
      // Held to the inputs' own patterns: these go into the machines file, whose lines a newline or `#` would change.
      if (typeof settings.system === 'string' && SYSTEM.test(settings.system)) facts.system = settings.system
      facts.extraPlatforms = list('extra-platforms').filter(system => SYSTEM.test(system))
      facts.systemFeatures = list('system-features').filter(feature => FEATURE.test(feature))
      facts.trustedUsers = list('trusted-users')
      const buildUsers = buildUsersOf(settings['build-users-group'], processUsers)
      if (buildUsers !== undefined) facts.runningBuilds = buildUsers
    } catch {
      // A builder whose Nix cannot print its config as JSON: `auto` and the trust check have nothing to go on.
    }
  }
  return facts
}

/**
 * How many of the users that own a process are build users of the daemon's `build-users-group`: named after it with
 * a number (nixbld1, _nixbld1 on macOS, nixbld-a-1), as every installer names them. Undefined without such a group
 * (single-user Nix, `auto-allocate-uids`) or without an answer from `ps`.
 */
function buildUsersOf(group: unknown, users: string[] | undefined): number | undefined {
  if (typeof group !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(group) || users === undefined)
    return undefined
  const escaped = group.replace(/[.]/g, '\\.')
  const member = new RegExp(`^_?${escaped}[-_]?\\d+$`)
  return users.filter(user => member.test(user)).length
}

/** The first figure of Linux's `0.52 0.58 0.59 1/467 12345` or macOS's `{ 1.23 1.45 1.67 }`; anything else: unknown. */
function setLoadAverage(facts: BuilderFacts, value: string): void {
  const first = /^\{?\s*(\d{1,6}(?:[.,]\d{1,6})?)(?:\s|$)/.exec(value)?.[1]
  if (first !== undefined) facts.loadAverage = Number(first.replace(',', '.'))
}

/** What a key that runs only nix-daemon or nix-store --serve cannot be asked: everything a shell command would tell. */
const UNASKED = ['systems', 'features', 'cores (max-jobs)', 'trusted-users', 'free space', 'load']

/**
 * The facts of a builder whose key runs only `nix-daemon --stdio`, from its handshake and its store's answer (or
 * `store` a string: why there was none).
 */
export function daemonFacts(greeting: DaemonGreeting, store: StoreRoundTrip | string): BuilderFacts {
  const facts: BuilderFacts = {
    access: 'nix-daemon',
    unasked: greeting.trusted === undefined ? UNASKED : UNASKED.filter(item => item !== 'trusted-users'),
    protocolVersion: greeting.protocol,
    program: 'nix-daemon',
    programFound: true,
    nixVersion: parseNixVersion(greeting.nixVersion).version,
    user: '',
    groups: [],
    extraPlatforms: [],
    systemFeatures: []
  }
  if (greeting.trusted !== undefined) facts.trusted = greeting.trusted
  if (typeof store === 'string') {
    facts.storeAnswers = false
    facts.storeError = store
  } else {
    facts.storeAnswers = store.storeAnswers
    facts.storeMs = store.storeMs
    if (store.storeError !== undefined) facts.storeError = store.storeError
  }
  return facts
}

/** The facts of a builder whose key runs only `nix-store --serve`: its protocol version, nothing more. */
export function serveFacts(protocolVersion: string): BuilderFacts {
  return {
    access: 'nix-store --serve',
    unasked: [...UNASKED, 'Nix version', 'whether its store answers'],
    protocolVersion,
    program: 'nix-store',
    programFound: true,
    nixVersion: '',
    user: '',
    groups: [],
    extraPlatforms: [],
    systemFeatures: []
  }
}
