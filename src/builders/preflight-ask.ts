import type ssh2 from 'ssh2'
import type { BuilderAccess, Protocol } from '../inputs/index.js'
import { type BuilderFacts, daemonFacts, factsCommands, parseFacts, serveFacts } from './builder-facts.js'
import {
  askDaemonStore,
  clientMagic,
  type DaemonGreeting,
  greetDaemon,
  isServeMismatch,
  serveHandshake,
  serveHello,
  startsWithDaemonMagic
} from './nix-protocol.js'
import { WireInbox } from './nix-wire.js'

/**
 * What the preflight asks a builder once logged in. The facts commands go to the user's shell; each gets the worker
 * protocol's client magic on its stdin at once, which the shell never reads (factsCommands), a key that runs only
 * `nix-daemon --stdio` answers straight away, and one that runs only `nix-store --serve` refuses with "protocol
 * mismatch". The access found decides what else can be asked.
 */

/** What the asking has learnt so far: the preflight's timeout reads it to say what hung. */
export interface Asking {
  /** How many channels the builder opened. */
  opened: number
  /** The facts commands' stdout, each once its channel closed. */
  outputs: (string | undefined)[]
  /** Known once a channel answered as one of Nix's programs. */
  access?: BuilderAccess
  /** A forced nix-daemon's handshake, once over. */
  greeting?: DaemonGreeting
}

/** A channel's end: it answered as `recognise` expected (and stays open), or it closed first. */
type ChannelAnswer =
  | { kind: 'answered'; inbox: WireInbox; channel: ssh2.ClientChannel }
  | { kind: 'ended'; stdout: string; stderr: string }

/** The stderr kept of one command: enough for its last lines. */
const MAX_STDERR = 16 * 1024

/** The builder's facts, or why they could not be read. */
export async function askBuilder(
  client: ssh2.Client,
  builder: { protocol: Protocol; remoteProgram?: string },
  asking: Asking
): Promise<BuilderFacts | string> {
  const { protocol, remoteProgram } = builder
  const answers = await execAll(client, factsCommands(protocol, remoteProgram), asking)
  if (typeof answers === 'string') return `cannot run a command on the builder: ${answers}`
  try {
    const daemon = answers.find(answer => answer.kind === 'answered')
    if (daemon?.kind === 'answered') return await askDaemon(daemon, asking)
    const ended = answers.flatMap(answer => (answer.kind === 'ended' ? [answer] : []))
    // Each channel started its own forced nix-store, and one may have failed on something else first (a locked
    // database): a shell prints on every channel, so no output anywhere and one mismatch say enough.
    if (
      ended.length > 0 &&
      ended.every(answer => answer.stdout === '') &&
      ended.some(answer => isServeMismatch(answer.stderr))
    )
      return await askServe(client, asking)
    return parseFacts(protocol, ended.map(answer => answer.stdout).join(''), remoteProgram)
  } catch (error) {
    const what = asking.access ?? 'the builder'
    return `${what} broke off the Nix protocol: ${error instanceof Error ? error.message : String(error)}`
  }
}

async function askDaemon(
  answer: ChannelAnswer & { kind: 'answered' },
  asking: Asking
): Promise<BuilderFacts> {
  asking.access = 'nix-daemon'
  const write = (bytes: Buffer): void => void answer.channel.write(bytes)
  const greeting = await greetDaemon(answer.inbox, write)
  asking.greeting = greeting
  if (greeting.refused !== undefined) return daemonFacts(greeting, greeting.refused)
  return daemonFacts(greeting, await askDaemonStore(answer.inbox, write, greeting.minor))
}

/** A second channel, for the serve protocol's own handshake: its version is all it tells before a request. */
async function askServe(client: ssh2.Client, asking: Asking): Promise<BuilderFacts | string> {
  asking.access = 'nix-store --serve'
  const answer = await openChannel(
    client,
    'nix-store --serve --write',
    serveHello(),
    pending => pending.length >= 16
  )
  if (answer instanceof Error) return `cannot open a channel for nix-store --serve: ${answer.message}`
  if (answer.kind === 'ended') {
    const said = answer.stderr.trim().split('\n').at(-1) ?? ''
    return `the key runs only nix-store --serve, which did not answer its own handshake: ${said || 'no output'}`
  }
  return serveFacts(await serveHandshake(answer.inbox))
}

/**
 * Runs `commands` at once, each on its own channel, and resolves with their answers in order, or with the first that
 * answered as nix-daemon, or with an error message. A builder that allows fewer sessions at once (sshd's MaxSessions)
 * refuses a channel: that command then runs once another has ended.
 */
function execAll(client: ssh2.Client, commands: string[], asking: Asking): Promise<ChannelAnswer[] | string> {
  return new Promise(resolve => {
    const answers: ChannelAnswer[] = []
    const refused: number[] = []
    let open = 0
    let settled = false
    const settle = (value: ChannelAnswer[] | string): void => {
      if (!settled) resolve(value)
      settled = true
    }
    const start = (index: number): void => {
      open++
      void openChannel(client, commands[index] ?? '', clientMagic(), startsWithDaemonMagic, asking).then(
        answer => {
          open--
          if (answer instanceof Error) {
            if (open === 0) settle(answer.message)
            else refused.push(index)
            return
          }
          answers[index] = answer
          if (answer.kind === 'answered') return settle([answer])
          asking.outputs[index] = answer.stdout
          const next = refused.shift()
          if (next !== undefined) start(next)
          else if (open === 0) settle(answers)
        }
      )
    }
    commands.forEach((_, index) => start(index))
  })
}

/** Runs `command` with `hello` on its stdin; resolves when its stdout satisfies `recognise`, or when it closes. */
function openChannel(
  client: ssh2.Client,
  command: string,
  hello: Buffer,
  recognise: (stdout: Buffer) => boolean,
  asking?: Asking
): Promise<ChannelAnswer | Error> {
  return new Promise(resolve => {
    client.exec(command, (error, channel) => {
      if (error) return resolve(error)
      if (asking !== undefined) asking.opened++
      const inbox = new WireInbox()
      let stderr = ''
      let answered = false
      channel.on('data', (chunk: Buffer) => {
        inbox.push(chunk)
        if (answered || !recognise(inbox.pending)) return
        answered = true
        resolve({ kind: 'answered', inbox, channel })
      })
      channel.stderr.on('data', (chunk: Buffer) => {
        if (stderr.length < MAX_STDERR) stderr += chunk.toString()
      })
      channel.on('close', () => {
        inbox.end()
        if (!answered) resolve({ kind: 'ended', stdout: inbox.pending.toString(), stderr })
      })
      channel.write(hello)
    })
  })
}
