import { type Companion, runChecked, startCompanion, stderrTail } from './process.js'

/**
 * An ssh-agent of the step's own, listening on a socket in a 0700 directory, given a private key on stdin: nothing on
 * disk holds the key, and the agent makes itself untraceable, so processes of the same user can have the key used
 * (through the socket) but not read it.
 */

/** The agents this process started, by socket. */
const agents = new Map<string, Companion>()

/** A missing or broken ssh-agent answers at once; this only bounds one that never says it listens. */
const AGENT_START_TIMEOUT_MS = 30_000

/**
 * Starts the agent in the foreground (`-D`: this process's child, which stopKeyAgent ends) and adds `key` to it. It
 * prints its socket's line once the socket listens (`-s`: in sh syntax whatever SHELL is). Once ready it does not keep
 * Node running, so it may outlive the step for later steps' builds; a later process empties it (emptyAgentCommand).
 */
export async function startKeyAgent(socket: string, key: string): Promise<void> {
  const agent = startCompanion('ssh-agent', ['-D', '-s', '-a', socket], agentReadyLine(socket), {
    timeoutMs: AGENT_START_TIMEOUT_MS,
    track: 'ssh-agent'
  })
  const ended = await agent.ready
  if (ended !== undefined) {
    throw new Error(
      `ssh-agent could not start on ${socket}: ${stderrTail(ended.stderr) || `exit code ${ended.code}`}`
    )
  }
  agents.set(socket, agent)
  await runChecked('ssh-add', ['-q', '-'], { input: key, env: agentEnvironment(socket) })
}

/** Stops the agent this process started on `socket`, and its key with it: whether there was one. */
export async function stopKeyAgent(socket: string): Promise<boolean> {
  const agent = agents.get(socket)
  if (agent === undefined) return false
  agents.delete(socket)
  // It ignores its stdin: the SIGTERM that close sends after the wait ends it, and it removes its socket.
  await agent.close(0)
  return true
}

/**
 * The command that empties an agent through its socket: for one this process did not start (the post step, after a
 * main step that ended without stopping its own).
 */
export function emptyAgentCommand(socket: string): string[] {
  return ['env', `SSH_AUTH_SOCK=${socket}`, 'ssh-add', '-D']
}

function agentEnvironment(socket: string): NodeJS.ProcessEnv {
  return { ...process.env, SSH_AUTH_SOCK: socket }
}

function agentReadyLine(socket: string): string {
  return `SSH_AUTH_SOCK=${socket}; export SSH_AUTH_SOCK;`
}
