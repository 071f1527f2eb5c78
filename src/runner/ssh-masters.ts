import { connect, type Socket } from 'node:net'
import {
  type CommandResult,
  type Companion,
  runCommand,
  shellQuote,
  startCompanion,
  stderrTail
} from '../base/index.js'
import { type ConfiguredBuilder, label } from '../inputs/index.js'
import { sshDestination } from '../nix/index.js'
import type { FileOp } from './file-agent.js'
import type { Undo } from './state.js'

/**
 * The SSH masters, one per builder, sharing its connection between Nix's sessions: planned with their control path in
 * the work directory, opened by the store check (this process's own for the remote-store plan, the daemon's ssh's
 * otherwise), and closed by main (its own) or by the post step (`ssh -O stop`, then any left over).
 */

/** Nothing to do now; records that the post step must close the SSH masters living in `controlDir`. */
export interface MastersStep {
  kind: 'ssh-masters'
  aliases: string[]
  controlDir: string
  configFile?: string
}

type MastersUndo = Extract<Undo, { kind: 'close-ssh-masters' }>

/**
 * The SSH masters' ControlPath in a plan's work directory (an `ssh-masters` step's `controlDir`): `%C`, a hash of the
 * connection, keeps the socket's path short, and the 0700 work directory keeps the sockets the connecting user's.
 */
export function controlPathIn(dir: string): string {
  return `${dir}/cm-%C`
}

/** The masters' step, with multiplexing only; `configFile`: the remote-store plan's own ssh config. */
export function mastersSteps(
  multiplex: boolean,
  builders: ConfiguredBuilder[],
  controlDir: string,
  configFile?: string
): MastersStep[] {
  if (!multiplex) return []
  const aliases = builders.map(builder => builder.alias)
  return [{ kind: 'ssh-masters', aliases, controlDir, ...(configFile === undefined ? {} : { configFile }) }]
}

/** The masters' undo, recorded whatever the batch does: closing a master that never opened is harmless. */
export function mastersChange(step: MastersStep): { undo: MastersUndo } {
  return {
    undo: {
      kind: 'close-ssh-masters',
      aliases: step.aliases,
      path: step.controlDir,
      ...(step.configFile === undefined ? {} : { configFile: step.configFile })
    }
  }
}

/**
 * `ssh -O stop` through each alias (its config is still there): the master takes no new session and ends with the
 * last one, at once when idle. A build of another job that the shared daemon sent through this alias (machines-file
 * path) finishes instead of dying with it. A master that does not answer is killed by the control path its command
 * line names (a stopped one no longer names it; [c]: not to match the agent's own command line).
 */
export function mastersUndoOps(undo: MastersUndo): FileOp[] {
  const config = undo.configFile === undefined ? [] : ['-F', undo.configFile]
  return [
    ...undo.aliases.map((alias): FileOp => ({
      op: 'attempt',
      argv: ['ssh', ...config, '-O', 'stop', alias]
    })),
    { op: 'attempt', argv: ['pkill', '-f', '--', `${escapeRegex(undo.path)}/[c]m-`] }
  ]
}

/** A path as an extended regular expression that matches only itself (pkill -f). */
function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')
}

/** What the master says once it is up: its control socket listens before its session opens, or its LocalCommand runs. */
const MASTER_READY = 'nix-offload: master ready'

/** The masters this process started (the remote-store plan's store checks), each kept until `close`. */
export class SshMasters {
  readonly #running: Companion[] = []

  /**
   * Starts `ssh` with `command` and waits until it says it is ready: undefined then, with the master kept when `keep`
   * (with multiplexing) and otherwise closed, since the connection was only the check. What ssh came to otherwise.
   */
  async open(
    command: string[],
    how: {
      keep: boolean
      env: NodeJS.ProcessEnv
      transport?: Socket
      timeoutMs: number
      signal?: AbortSignal
    }
  ): Promise<CommandResult | undefined> {
    const { keep, ...options } = how
    const master = startCompanion('ssh', command, MASTER_READY, { ...options, track: 'ssh master' })
    const result = await master.ready
    if (result !== undefined) return result
    if (keep) this.#running.push(master)
    else await master.close(0)
    return undefined
  }

  /**
   * Ends the masters, once nothing uses them: whether each ended by itself within two seconds (otherwise it was
   * stopped, and `ssh -O stop` through its socket is still worth a try).
   */
  async close(): Promise<boolean> {
    const closing = this.#running.splice(0).map(master => master.close(2_000))
    return (await Promise.all(closing)).every(Boolean)
  }
}

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

/** How long the store check may take: the builder answered the preflight moments ago. */
export const STORE_CHECK_TIMEOUT_MS = 60_000

/**
 * The remote-store plan's check: `ssh -F <its config> <user@alias> true` as the runner user (the preflight has asked
 * the builder's store already, over the action's own SSH client). Without the runner's `nix` and the builder's
 * `nix-daemon --stdio` it is the shortest way to the master, on the path every small build waits on (bench/README.md,
 * "Figures behind choices in the code"). With multiplexing (a `controlPath`), the check is the master: this process's
 * own child, kept in `masters`.
 */
export async function sshCheck(
  target: { configFile: string; builder: ConfiguredBuilder; controlPath: string | undefined },
  masters: SshMasters,
  signal: AbortSignal | undefined
): Promise<StoreReach> {
  const { configFile, builder, controlPath } = target
  const destination = sshDestination(builder.storeUri)
  const started = Date.now()
  const bound = { timeoutMs: STORE_CHECK_TIMEOUT_MS, ...(signal === undefined ? {} : { signal }) }
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
    const keep = controlPath !== undefined
    result = await masters.open(command, { ...bound, keep, env, ...(fed ? { transport: socket } : {}) })
  } else {
    command = ['-F', configFile, destination, 'true']
    result = await runCommand('ssh', command, bound)
  }
  return sshReach(builder, command, result, started)
}

function sshReach(
  builder: ConfiguredBuilder,
  command: string[],
  result: CommandResult | undefined,
  started: number
): StoreReach {
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
  if (result?.timedOut === true) reach.error = `it hung: no answer within ${STORE_CHECK_TIMEOUT_MS / 1000} s`
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
