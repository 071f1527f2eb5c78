import { connect, type Socket } from 'node:net'
import { NIX_FEATURES, parseStoreInfo, sshDestination, storeInfoArgs } from '../nix/index.js'
import { controlPathIn, nixEnvironment, type Plan } from './plan.js'
import type { ConfiguredBuilder } from './render.js'
import type { RunnerFacts } from './probe.js'
import {
  type CommandResult,
  type Companion,
  runCommand,
  shellQuote,
  startCompanion,
  stderrTail
} from '../base/index.js'
import { label } from '../inputs/index.js'

/** The builder's store as the account that offloads (root for a daemon) reaches it through the written ssh config. */
export interface StoreReach {
  storeUri: string
  builder: string
  /** The check, as the log and the error quote it. */
  command: string
  ok: boolean
  ms: number
  version?: string
  /** Reported by the store check from Nix 2.15 only. */
  trusted?: boolean
  /** Nix's last lines when it failed. */
  error?: string
}

/**
 * The seed's `sudo nix store ping --store ssh-ng://user@alias` check (spelled `nix store info` from Nix 2.19, see
 * src/nix/nix-cli.ts), for every builder at once. It goes through the same ssh config, key file and known_hosts the
 * daemon will use, as the same account, so it catches what the action's own SSH client cannot: permissions, an ssh
 * config of root's that overrides ours, a sudo that does not work.
 */
/** How long the store check may take: the builder answered the preflight moments ago. */
const STORE_PING_TIMEOUT_MS = 60_000

/**
 * Without `facts` (started before the runner probe ends, for the remote-store plan, which needs no sudo): `nix` from
 * PATH, and the `store ping` form that every version accepts.
 */
export async function pingStores(
  plan: Plan,
  facts: RunnerFacts | undefined,
  signal?: AbortSignal
): Promise<StoreReach[]> {
  if (plan.path === 'remote-store' && plan.sshConfigFile !== undefined) {
    const configFile = plan.sshConfigFile
    const multiplexing = plan.steps.find(step => step.kind === 'ssh-masters')
    const controlPath = multiplexing === undefined ? undefined : controlPathIn(multiplexing.controlDir)
    return Promise.all(plan.builders.map(builder => sshCheck(configFile, builder, controlPath, signal)))
  }
  const viaSudo = plan.asRoot && facts?.isRoot !== true
  const check = storeInfoArgs({
    implementation: facts?.nixImplementation ?? 'nix',
    version: facts?.nixVersion ?? ''
  })
  const nixPath = facts?.nixPath ?? 'nix'
  return Promise.all(
    plan.builders.map(async builder => {
      const args = [...NIX_FEATURES, ...check, '--store', builder.storeUri]
      const started = Date.now()
      // Bounded: a builder that stops answering after the preflight must not turn this into a six-hour job.
      const bound = { timeoutMs: STORE_PING_TIMEOUT_MS, ...(signal === undefined ? {} : { signal }) }
      const result = viaSudo
        ? await runCommand('sudo', ['-n', nixPath, ...args], bound)
        : await runCommand(nixPath, args, { ...bound, env: nixEnvironment(plan, process.env) })
      const reach: StoreReach = {
        storeUri: builder.storeUri,
        builder: label(builder),
        command: `nix ${check.join(' ')} --store ${builder.storeUri}`,
        ok: result.code === 0,
        ms: Date.now() - started
      }
      const { version, trusted } = parseStoreInfo(result.stdout.toString(), result.stderr)
      if (version !== undefined) reach.version = version
      if (trusted !== undefined) reach.trusted = trusted
      if (!reach.ok) reach.error = stderrTail(result.stderr)
      if (result.timedOut === true) {
        reach.error =
          `it hung: no answer within ${STORE_PING_TIMEOUT_MS / 1000} s (the builder accepted the SSH connection ` +
          'but its Nix did not answer: is its nix-daemon running and responsive?)'
      }
      return reach
    })
  )
}

/**
 * The remote-store plan's check: `ssh -F <its config> <user@alias> true` as the runner user (the preflight has asked
 * the builder's store already, over the action's own SSH client). Without the runner's `nix` and the builder's
 * `nix-daemon --stdio` it is the shortest way to the master, on the path every small build waits on (bench/README.md,
 * "Figures behind choices in the code"). With multiplexing (a `controlPath`), the check is the master: this process's
 * own child, which closeStoreMasters ends (no `ssh -O stop`).
 */
async function sshCheck(
  configFile: string,
  builder: ConfiguredBuilder,
  controlPath: string | undefined,
  signal: AbortSignal | undefined
): Promise<StoreReach> {
  const destination = sshDestination(builder.storeUri)
  const started = Date.now()
  const bound = { timeoutMs: STORE_PING_TIMEOUT_MS, ...(signal === undefined ? {} : { signal }) }
  // A builder whose key runs only nix-daemon would start it for any command, and it waits for its protocol: no
  // command there at all (`-N`), and ssh says it is ready from this end (LocalCommand).
  const shell = builder.access === undefined || builder.access === 'shell'
  let result: CommandResult | undefined
  let command: string[]
  if (controlPath !== undefined || !shell) {
    const socket = controlPath === undefined ? undefined : await connectNoDelay(builder, signal)
    const fed = socket !== undefined
    command = companionCommand({ configFile, destination, controlPath, fed, shell })
    // SHELL: LocalCommand's shell, whose stdout is the connection; /bin/sh reads no BASH_ENV that could print to it.
    const env = fed ? { ...process.env, SHELL: '/bin/sh' } : process.env
    const master = startCompanion('ssh', command, MASTER_READY, {
      ...bound,
      env,
      track: 'ssh master',
      ...(fed ? { transport: socket } : {})
    })
    result = await master.ready
    if (result === undefined && controlPath !== undefined) masters.push(master)
    // Without multiplexing the connection was only the check.
    else if (result === undefined) await master.close(0)
  } else {
    command = ['-F', configFile, destination, 'true']
    result = await runCommand('ssh', command, bound)
  }
  const reach: StoreReach = {
    storeUri: builder.storeUri,
    builder: label(builder),
    // As a shell would take it: the master's remote command is one quoted word.
    command: ['ssh', ...command.map(word => (/^[\w@%./:=+-]+$/.test(word) ? word : shellQuote(word)))].join(
      ' '
    ),
    ok: result === undefined || result.code === 0,
    ms: Date.now() - started
  }
  if (result !== undefined && !reach.ok) reach.error = stderrTail(result.stderr) || `exit code ${result.code}`
  if (result?.timedOut === true) reach.error = `it hung: no answer within ${STORE_PING_TIMEOUT_MS / 1000} s`
  return reach
}

/**
 * A TCP connection to the builder's address and port, as its ssh config names them, with Nagle's algorithm off:
 * OpenSSH turns it off itself only once the session is interactive, so its handshake would wait on the builder's
 * delayed ACKs (bench/README.md, "The builder's own store").
 * Undefined when it cannot connect: ssh then connects itself, and its error says why.
 */
function connectNoDelay(
  builder: ConfiguredBuilder,
  signal: AbortSignal | undefined
): Promise<Socket | undefined> {
  return new Promise(resolve => {
    const socket = connect({ host: builder.host, port: builder.port, noDelay: true })
    // Before it connects: what the server sends first (its version line) is for ssh, and Node must not read it.
    socket.pause()
    const abandon = (): void => settle(false)
    const settle = (connected: boolean): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', abandon)
      socket.removeAllListeners('error')
      socket.on('error', () => undefined)
      if (!connected) socket.destroy()
      resolve(connected ? socket : undefined)
    }
    const timer = setTimeout(() => settle(false), CONNECT_TIMEOUT_MS)
    // No longer wanted (the preflight failed): ssh, started with the same signal, then ends at once.
    signal?.addEventListener('abort', abandon, { once: true })
    if (signal?.aborted === true) abandon()
    socket.once('connect', () => settle(true))
    socket.once('error', () => settle(false))
  })
}

/** The ssh that checks a builder and stays as its master (with a `controlPath`), as runs on the builder's key. */
function companionCommand(how: {
  configFile: string
  destination: string
  controlPath: string | undefined
  fed: boolean
  shell: boolean
}): string[] {
  const { configFile, destination, controlPath } = how
  const master = controlPath === undefined ? [] : ['-o', 'ControlMaster=yes']
  if (how.fed) return ['-F', configFile, ...FED_MASTER, '-o', `ControlPath=${controlPath}`, '-N', destination]
  if (how.shell)
    return ['-F', configFile, ...master, destination, `echo ${MASTER_READY}; exec cat >/dev/null`]
  return [
    '-F',
    configFile,
    ...master,
    '-o',
    'PermitLocalCommand=yes',
    '-o',
    `LocalCommand=echo ${MASTER_READY}`,
    '-N',
    destination
  ]
}

/** The ssh config's ConnectTimeout. */
const CONNECT_TIMEOUT_MS = 10_000

/** What the master says once it is up: its control socket listens before its session opens, or its LocalCommand runs. */
const MASTER_READY = 'nix-offload: master ready'

/**
 * The master of a connection this process opened (connectNoDelay): ssh takes it as its stdin and stdout
 * (`ProxyCommand -`, OpenSSH 6.5 and later), opens no session (`-N`), and says it is ready once its control socket
 * listens, on stderr (LocalCommand runs after that; its stdout would be the connection).
 */
const FED_MASTER = [
  '-o',
  'ControlMaster=yes',
  '-o',
  'ProxyCommand=-',
  '-o',
  'PermitLocalCommand=yes',
  '-o',
  `LocalCommand=echo ${MASTER_READY} >&2`
]

/** The masters this process's store checks started. */
const masters: Companion[] = []

/**
 * Ends the SSH masters the remote-store store checks started, once nothing uses them: whether each ended by itself
 * within two seconds (otherwise it was stopped, and `ssh -O stop` through its socket is still worth a try).
 */
export async function closeStoreMasters(): Promise<boolean> {
  const closing = masters.splice(0).map(master => master.close(2_000))
  return (await Promise.all(closing)).every(Boolean)
}
