import { type ChildProcess, spawn } from 'node:child_process'
import type { Socket } from 'node:net'
import { safeLine, safeText } from './safe-text.js'

/** The one place that starts processes. Nothing it runs is echoed to the log. */
export interface CommandOptions {
  /**
   * Bytes written to the process's stdin (secrets travel this way, never in argv), then closed; a promise's once it
   * settles (the process may start before its question is known), an empty stdin if it rejects.
   */
  input?: Buffer | string | Promise<string>
  env?: NodeJS.ProcessEnv
  /** Receives stderr as it arrives, for live logs; the result's `stderr` is then empty. */
  onStderr?: (chunk: Buffer) => void
  /**
   * Stops the process (TERM, then KILL 5 s later) when it runs longer: the result says `timedOut`, and its stderr ends
   * with a line naming the command that hung. DEFAULT_TIMEOUT_MS when left out; `'none'` only for the build itself
   * (and what scales with it), which the job's own timeout bounds. With a promised `input`, the time counts from the
   * moment the input is known: the process cannot finish before its question.
   */
  timeoutMs?: number | 'none'
  /** Stops it the same way when aborted: its answer is no longer wanted. */
  signal?: AbortSignal
  /**
   * What it is, for the post step (`nix build`): a long-running process is told to the ChildTracker while it runs,
   * so that a main step killed meanwhile does not leave it running.
   */
  track?: string
}

export interface CommandResult {
  code: number
  stdout: Buffer
  stderr: string
  /** It was stopped after `timeoutMs`. */
  timedOut?: boolean
}

/** How long a child may run unless its caller says otherwise: a local question or one to a builder, never a build. */
export const DEFAULT_TIMEOUT_MS = 50_000

/**
 * How long a child's pipes may stay open after it exited: a grandchild it left behind (`sleep 30 &`) holds them, and
 * must not hold the step.
 */
export const DRAIN_MS = 2_000

/**
 * Runs a command to its end: its exit, and its pipes drained (at most DRAIN_MS after). A command that cannot be
 * started (not found) rejects; any exit code resolves.
 */
export function runCommand(
  command: string,
  args: string[],
  options: CommandOptions = {}
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: childEnvironment(options.env ?? process.env),
      stdio: ['pipe', 'pipe', 'pipe']
    })
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    const { input } = options
    const bounds = bound(child, options, input instanceof Promise ? input : undefined)
    const untrack = follow(child, options.track)
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
    // A build log can be gigabytes: with a listener, stderr is streamed and not kept.
    child.stderr.on('data', (chunk: Buffer) =>
      options.onStderr ? options.onStderr(chunk) : stderr.push(chunk)
    )
    child.on('error', error => {
      bounds.release()
      untrack()
      reject(error)
    })
    void ended(child).then(code => {
      bounds.release()
      untrack()
      const result: CommandResult = {
        code,
        stdout: Buffer.concat(stdout),
        stderr: Buffer.concat(stderr).toString('utf8')
      }
      if (bounds.timedOut()) {
        result.timedOut = true
        result.stderr += hungLine(command, args, options.timeoutMs)
      }
      resolve(result)
    })
    // A process that exits without reading its stdin is not an error of ours.
    child.stdin.on('error', () => undefined)
    if (input instanceof Promise)
      input.then(
        text => child.stdin.end(text),
        () => child.stdin.end()
      )
    else child.stdin.end(input)
  })
}

/** A process that runs beside the step until the step closes it (startCompanion). */
export interface Companion {
  /**
   * Undefined once the process printed its ready line; otherwise how it ended (or was stopped after `timeoutMs`, or
   * by `signal`) before it did.
   */
  ready: Promise<CommandResult | undefined>
  /**
   * Closes its stdin (with a `transport`: sends it SIGTERM), and waits up to `waitMs` for it to end, then stops it:
   * whether it ended by itself. From the moment it is ready, it does not keep Node running: the step may end without
   * closing it, and its stdin then closes (a process with a `transport` stays until it is stopped).
   */
  close: (waitMs: number) => Promise<boolean>
}

export interface CompanionOptions extends Pick<CommandOptions, 'env' | 'timeoutMs' | 'signal' | 'track'> {
  /**
   * A connected socket for the process's stdin and stdout, which it uses as its connection (`ssh -o ProxyCommand=-`).
   * It then says it is ready on stderr, and is ended by SIGTERM. This process keeps no handle on the socket.
   */
  transport?: Socket
}

/**
 * Starts a process that stays: it says it is ready with `readyLine` on stdout (on stderr with a `transport`), and ends
 * when its stdin closes (with a `transport`: when it is stopped).
 */
export function startCompanion(
  command: string,
  args: string[],
  readyLine: string,
  options: CompanionOptions = {}
): Companion {
  const { transport } = options
  const child = spawn(command, args, {
    env: childEnvironment(options.env ?? process.env),
    stdio: transport === undefined ? ['pipe', 'pipe', 'pipe'] : [transport, transport, 'pipe']
  })
  // The child has its own copy of the socket (spawn returns once it runs): this one must neither read nor hold it.
  transport?.destroy()
  const untrack = follow(child, options.track)
  const end = new Promise<number>(resolve => {
    child.on('error', () => resolve(127))
    void ended(child).then(resolve)
  }).finally(untrack)
  child.stdin?.on('error', () => undefined)
  const bounds = bound(child, options)
  const says = transport === undefined ? child.stdout : child.stderr
  const ready = new Promise<CommandResult | undefined>(resolve => {
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    const settle = (result: CommandResult | undefined): void => {
      bounds.release()
      resolve(result)
    }
    const seen = transport === undefined ? stdout : stderr
    says?.on('data', (chunk: Buffer) => {
      seen.push(chunk)
      if (!Buffer.concat(seen).toString('utf8').split('\n').includes(readyLine)) return
      // Ready: from now on it lives beside the step without holding it.
      says.removeAllListeners('data')
      says.resume()
      for (const handle of [child, child.stdin, child.stdout, child.stderr])
        if (handle !== null) unref(handle)
      settle(undefined)
    })
    if (transport === undefined) child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk))
    void end.then(code => {
      const result: CommandResult = {
        code,
        stdout: Buffer.concat(stdout),
        stderr: Buffer.concat(stderr).toString('utf8')
      }
      if (bounds.timedOut()) result.timedOut = true
      settle(result)
    })
  })
  const close = async (waitMs: number): Promise<boolean> => {
    if (transport === undefined) child.stdin?.end()
    else child.kill('SIGTERM')
    let timer: NodeJS.Timeout | undefined
    const byItself = await Promise.race([
      end.then(() => true),
      new Promise<boolean>(resolve => (timer = setTimeout(() => resolve(false), waitMs)))
    ])
    clearTimeout(timer)
    if (!byItself) bounds.stop()
    return byItself
  }
  return { ready, close }
}

/**
 * The exit code once `child` has exited and its pipes have closed, or DRAIN_MS after it exited: then its pipes are
 * destroyed, whatever still holds them. A child killed by a signal has no code: 1.
 */
function ended(child: ChildProcess): Promise<number> {
  return new Promise(resolve => {
    child.once('close', code => resolve(code ?? 1))
    child.once('exit', code => {
      const drained = setTimeout(() => {
        for (const pipe of [child.stdin, child.stdout, child.stderr]) pipe?.destroy()
        resolve(code ?? 1)
      }, DRAIN_MS)
      drained.unref()
      child.once('close', () => clearTimeout(drained))
    })
  })
}

/** The line a timed-out command's stderr ends with, so that any message quoting its stderr says what hung. */
function hungLine(command: string, args: string[], timeoutMs: CommandOptions['timeoutMs']): string {
  const seconds = Math.round((typeof timeoutMs === 'number' ? timeoutMs : DEFAULT_TIMEOUT_MS) / 1000)
  const line = [command, ...args].join(' ')
  const shown = line.length > 200 ? `${line.slice(0, 200)}…` : line
  return `\n\`${shown}\` hung: no end within ${seconds} s, so it was stopped\n`
}

/**
 * Stops `child` (TERM, then KILL 5 s later) once its time bound has passed (counted from when `startAfter` settles,
 * if given) or `signal` aborts, until `release` is called: the bounds of runCommand and startCompanion.
 */
function bound(
  child: ChildProcess,
  options: Pick<CommandOptions, 'timeoutMs' | 'signal'>,
  startAfter?: Promise<unknown>
): { stop: () => void; timedOut: () => boolean; release: () => void } {
  const stop = (): void => {
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), 5_000).unref()
  }
  let timedOut = false
  let released = false
  let timer: NodeJS.Timeout | undefined
  const { timeoutMs = DEFAULT_TIMEOUT_MS } = options
  const arm = (): void => {
    if (released || timeoutMs === 'none') return
    timer = setTimeout(() => {
      timedOut = true
      stop()
    }, timeoutMs)
  }
  if (startAfter === undefined) arm()
  else startAfter.then(arm, arm)
  const { signal } = options
  if (signal?.aborted === true) stop()
  signal?.addEventListener('abort', stop, { once: true })
  return {
    stop,
    timedOut: () => timedOut,
    release: () => {
      released = true
      clearTimeout(timer)
      signal?.removeEventListener('abort', stop)
    }
  }
}

/** Told of each child started with a `track` label as it starts, and as it ends. */
export interface ChildTracker {
  started: (pid: number, label: string) => void
  ended: (pid: number) => void
}

let tracker: ChildTracker | undefined

/** Sets who is told of tracked children (the main step, which records them for the post step). */
export function trackChildren(next: ChildTracker | undefined): void {
  tracker = next
}

/** Tells the tracker of `child` if it has a label: returns what to call once it ended. */
function follow(child: ChildProcess, label: string | undefined): () => void {
  const told = tracker
  const { pid } = child
  if (told === undefined || label === undefined || pid === undefined) return () => undefined
  told.started(pid, label)
  return () => told.ended(pid)
}

/** Lets Node end while `handle` is still open: a child process, or one of its pipes (a net.Socket underneath). */
function unref(handle: object): void {
  if ('unref' in handle && typeof handle.unref === 'function') handle.unref()
}

/**
 * The last three lines of a process's stderr on one line, made harmless to print: how a failure is quoted in a
 * message (the stderr of `nix` or `ssh` may quote the builder).
 */
export function stderrTail(stderr: string): string {
  return stderr
    .trim()
    .split('\n')
    .slice(-3)
    .map(line => safeLine(line))
    .join(' / ')
}

/** Runs a command that must succeed; the error carries its stderr. */
export async function runChecked(
  command: string,
  args: string[],
  options: CommandOptions = {}
): Promise<Buffer> {
  const result = await runCommand(command, args, options)
  if (result.code !== 0) {
    const detail = safeText(result.stderr.trim().split('\n').slice(-5).join('\n'))
    throw new Error(
      `\`${[command, ...args].join(' ')}\` exited with code ${result.code}${detail ? `: ${detail}` : ''}`
    )
  }
  return result.stdout
}

/**
 * What a child process may see of the environment: all of it but the step's inputs (INPUT_*, the private key among
 * them) and the runner's tokens for the Actions services. An `--impure` expression reads the environment of
 * `nix build` with `builtins.getEnv`, and a build script reads its own.
 */
export function childEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const result: Record<string, string> = {}
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || /^INPUT_/i.test(name) || SECRET_VARIABLES.has(name)) continue
    result[name] = value
  }
  return result
}

/** The runner's credentials for its own services (cache, OIDC): the action uses them in-process only. */
const SECRET_VARIABLES = new Set(['ACTIONS_RUNTIME_TOKEN', 'ACTIONS_ID_TOKEN_REQUEST_TOKEN'])

/** One word for a POSIX shell, single-quoted: what `ssh` and `sh -c` hand the builder's shell as a command line. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`
}
