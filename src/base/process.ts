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
    env: options.env === undefined ? undefined : definedOnly(options.env),
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

function definedOnly(env: NodeJS.ProcessEnv): Record<string, string> {
  const result: Record<string, string> = {}
  for (const [name, value] of Object.entries(env)) if (value !== undefined) result[name] = value
  return result
}
