import { connect as tcpConnect, type Socket } from 'node:net'
import ssh2 from 'ssh2'
import { type BuilderFacts, factsCommands, parseFacts } from './builder-facts.js'
import { type HostKey, knownHostsLineMatches, type KnownHostsLine, type PrivateKey } from '../inputs/index.js'
import type { BuilderRequest } from '../inputs/index.js'

/** How a TCP connection to the builder went. */
export type Reach =
  | { ok: true; connectMs: number }
  | { ok: false; failure: 'refused' | 'timeout' | 'dns' | 'unreachable'; detail: string }

/** What one builder showed the action's own SSH client; judged by preflight-verdict.ts. */
export interface Observation {
  reach: Reach
  /** The host key the builder presented, if the handshake got that far. */
  presented?: HostKey
  /** The keys known_hosts pins for this host and port. */
  pinned: HostKey[]
  authenticated?: boolean
  facts?: BuilderFacts
  /** A failure after the TCP connection that is none of the above (e.g. a protocol error). */
  error?: string
  totalMs: number
}

export interface PreflightOptions {
  connectTimeoutMs: number
  /** For the whole inspection of one builder. */
  timeoutMs: number
}

const KEY_ALGORITHMS: Record<string, ssh2.ServerHostKeyAlgorithm[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521']
}
const DEFAULT_ORDER = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'ssh-rsa'
]

/**
 * Inspects one builder with a real SSH handshake from the action's own process (ssh2): TCP reachability, the host key
 * it presents, whether it accepts the key, and what its Nix says about itself. Changes nothing anywhere.
 */
export async function inspectBuilder(
  builder: BuilderRequest,
  knownHosts: KnownHostsLine[],
  key: PrivateKey,
  options: PreflightOptions
): Promise<Observation> {
  const started = Date.now()
  const pinned = knownHosts
    .filter(line => knownHostsLineMatches(line, builder.host, builder.port))
    .map(line => line.key)
  const { reach, socket } = await openTcp(builder.host, builder.port, options.connectTimeoutMs)
  const observation: Observation = { reach, pinned, totalMs: 0 }
  if (socket !== undefined)
    await handshake(builder, socket, key, observation, options.timeoutMs - (Date.now() - started))
  observation.totalMs = Date.now() - started
  return observation
}

function openTcp(host: string, port: number, timeoutMs: number): Promise<{ reach: Reach; socket?: Socket }> {
  return new Promise(resolve => {
    const started = process.hrtime.bigint()
    const socket = tcpConnect({ host, port })
    socket.setTimeout(timeoutMs)
    socket.once('connect', () => {
      socket.setTimeout(0)
      // ssh2 writes a packet in more than one piece: with Nagle's algorithm on, each request after the key exchange
      // waits for the builder's delayed ACK (about 40 ms), three times before the key is accepted. Measured on the
      // lab's loopback: handshake and one command 257 ms with Nagle, 57 ms without.
      socket.setNoDelay(true)
      const connectMs = Number(process.hrtime.bigint() - started) / 1e6
      resolve({ reach: { ok: true, connectMs: Math.round(connectMs * 10) / 10 }, socket })
    })
    socket.once('timeout', () => {
      socket.destroy()
      resolve({ reach: { ok: false, failure: 'timeout', detail: `no answer within ${timeoutMs / 1000} s` } })
    })
    socket.once('error', (error: NodeJS.ErrnoException) => {
      const failure =
        error.code === 'ECONNREFUSED'
          ? 'refused'
          : error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN'
            ? 'dns'
            : error.code === 'ETIMEDOUT'
              ? 'timeout'
              : 'unreachable'
      resolve({ reach: { ok: false, failure, detail: `${error.code ?? 'error'}: ${error.message}` } })
    })
  })
}

function handshake(
  builder: BuilderRequest,
  socket: Socket,
  key: PrivateKey,
  observation: Observation,
  timeoutMs: number
): Promise<void> {
  return new Promise(resolve => {
    const client = new ssh2.Client()
    let settled = false
    const finish = (): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      client.end()
      socket.destroy()
      resolve()
    }
    // The facts commands' outputs, each once its channel closed.
    const outputs: (string | undefined)[] = []
    const timer = setTimeout(
      () => {
        const seconds = Math.round(Math.max(timeoutMs, 1000) / 1000)
        // Everything but the store check answered: the builder's store (its nix-daemon) hangs.
        const [about, store] = outputs
        if (about !== undefined && store === undefined) {
          const facts = parseFacts(builder.protocol, about, builder.remoteProgram)
          observation.facts = { ...facts, storeAnswers: false, storeError: `no answer within ${seconds} s` }
        } else {
          observation.error ??= `no SSH handshake within ${seconds} s`
        }
        finish()
      },
      Math.max(timeoutMs, 1000)
    )
    // Ask for the pinned key's type first, as OpenSSH does when known_hosts has one, so a builder with several host
    // keys presents the pinned one.
    const pinnedTypes = observation.pinned.map(pin => pin.type)
    const order = [...new Set([...pinnedTypes, ...DEFAULT_ORDER])].flatMap(type => KEY_ALGORITHMS[type] ?? [])
    client.on('ready', () => {
      observation.authenticated = true
      void execAll(client, factsCommands(builder.protocol, builder.remoteProgram), outputs).then(error => {
        if (error !== undefined) observation.error = `cannot run a command on the builder: ${error}`
        else observation.facts = parseFacts(builder.protocol, outputs.join(''), builder.remoteProgram)
        finish()
      })
    })
    client.on('error', (error: Error & { level?: string }) => {
      if (error.level === 'client-authentication') observation.authenticated = false
      else if (observation.presented === undefined || isPinned(observation)) observation.error = error.message
      finish()
    })
    client.on('close', finish)
    client.connect({
      sock: socket,
      username: builder.user,
      privateKey: key.text,
      // Straight to the key: without this, ssh2 first asks for method "none" to learn the methods, one more round
      // trip (about 45 ms against OpenSSH's sshd even on loopback).
      authHandler: ['publickey'],
      algorithms: { serverHostKey: order },
      readyTimeout: Math.max(timeoutMs, 1000),
      hostVerifier: (blob: Buffer): boolean => {
        observation.presented = hostKeyOf(blob)
        return isPinned(observation)
      }
    })
  })
}

/**
 * Runs `commands` at once, each on its own channel of `client`, and fills `outputs` (stdout, by the commands' order) as
 * each ends; resolves with an error message, or undefined once all have ended. A builder that allows fewer sessions
 * at once (sshd's MaxSessions) refuses a channel: that command then runs once another has ended.
 */
function execAll(
  client: ssh2.Client,
  commands: string[],
  outputs: (string | undefined)[]
): Promise<string | undefined> {
  return new Promise(resolve => {
    const refused: number[] = []
    let open = 0
    const start = (index: number): void => {
      open++
      client.exec(commands[index] ?? '', (error, stream) => {
        if (error) {
          open--
          if (open === 0) resolve(error.message)
          else refused.push(index)
          return
        }
        let text = ''
        stream.on('data', (chunk: Buffer) => (text += chunk.toString()))
        stream.stderr.on('data', () => undefined)
        stream.on('close', () => {
          outputs[index] = text
          open--
          const next = refused.shift()
          if (next !== undefined) start(next)
          else if (open === 0) resolve(undefined)
        })
      })
    }
    commands.forEach((_, index) => start(index))
  })
}

function isPinned(observation: Observation): boolean {
  const presented = observation.presented
  return presented !== undefined && observation.pinned.some(pin => pin.blob === presented.blob)
}

/** The key type is the first string of the SSH wire-format key blob. */
function hostKeyOf(blob: Buffer): HostKey {
  const length = blob.readUInt32BE(0)
  return { type: blob.subarray(4, 4 + length).toString(), blob: blob.toString('base64') }
}
