import { exec } from '@actions/exec'

/** The one place that starts processes. Nothing it runs is echoed to the log. */
export interface CommandOptions {
  /** Bytes written to the process's stdin (secrets travel this way, never in argv). */
  input?: Buffer | string
  env?: NodeJS.ProcessEnv
  /** Receives stderr as it arrives, for live logs; the result's `stderr` is then empty. */
  onStderr?: (chunk: Buffer) => void
}

export interface CommandResult {
  code: number
  stdout: Buffer
  stderr: string
}

export async function runCommand(
  command: string,
  args: string[],
  options: CommandOptions = {}
): Promise<CommandResult> {
  const stdout: Buffer[] = []
  const stderr: Buffer[] = []
  const code = await exec(command, args, {
    silent: true,
    ignoreReturnCode: true,
    input: typeof options.input === 'string' ? Buffer.from(options.input) : options.input,
    env: childEnvironment(options.env ?? process.env),
    listeners: {
      stdout: chunk => stdout.push(chunk),
      // A build log can be gigabytes: with a listener, stderr is streamed and not kept.
      stderr: chunk => (options.onStderr ? options.onStderr(chunk) : stderr.push(chunk))
    }
  })
  return { code, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') }
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
