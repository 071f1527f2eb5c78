import { spawn } from 'node:child_process'

/** The one place that starts processes. Nothing it runs is echoed to the log. */
export interface CommandOptions {
  /** Bytes written to the process's stdin (secrets travel this way, never in argv). */
  input?: Buffer | string
  env?: NodeJS.ProcessEnv
  /** Receives stderr as it arrives, for live logs; the result's `stderr` is then empty. */
  onStderr?: (chunk: Buffer) => void
  /** Stops the process (TERM, then KILL 5 s later) when it runs longer: the result says `timedOut`. */
  timeoutMs?: number
  /** Stops it the same way when aborted: its answer is no longer wanted. */
  signal?: AbortSignal
}

export interface CommandResult {
  code: number
  stdout: Buffer
  stderr: string
  /** It was stopped after `timeoutMs`. */
  timedOut?: boolean
}

/** Runs a command to its end. A command that cannot be started (not found) rejects; any exit code resolves. */
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
    let timedOut = false
    const stop = (): void => {
      child.kill('SIGTERM')
      setTimeout(() => child.kill('SIGKILL'), 5_000).unref()
    }
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true
            stop()
          }, options.timeoutMs)
    const { signal } = options
    if (signal?.aborted === true) stop()
    signal?.addEventListener('abort', stop, { once: true })
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
    // A build log can be gigabytes: with a listener, stderr is streamed and not kept.
    child.stderr.on('data', (chunk: Buffer) =>
      options.onStderr ? options.onStderr(chunk) : stderr.push(chunk)
    )
    child.on('error', error => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', stop)
      reject(error)
    })
    child.on('close', code => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', stop)
      const result: CommandResult = {
        code: code ?? 1,
        stdout: Buffer.concat(stdout),
        stderr: Buffer.concat(stderr).toString('utf8')
      }
      if (timedOut) result.timedOut = true
      resolve(result)
    })
    // A process that exits without reading its stdin is not an error of ours.
    child.stdin.on('error', () => undefined)
    child.stdin.end(options.input)
  })
}

/** Runs a command that must succeed; the error carries its stderr. */
export async function runChecked(
  command: string,
  args: string[],
  options: CommandOptions = {}
): Promise<Buffer> {
  const result = await runCommand(command, args, options)
  if (result.code !== 0) {
    const detail = result.stderr.trim().split('\n').slice(-5).join('\n')
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
