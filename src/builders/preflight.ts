import { connect as tcpConnect, type Socket } from 'node:net'
import ssh2 from 'ssh2'
import { type BuilderFacts, daemonFacts, parseFacts } from './builder-facts.js'
import { type Asking, askBuilder } from './preflight-ask.js'
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
      // waits for the builder's delayed ACK, three times before the key is accepted (bench/README.md, "Figures behind
      // choices in the code").
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

/** The steps of an SSH session, in order: a timeout names the one that hung. */
type SshStep = 'version exchange' | 'key exchange' | 'authentication' | 'command'

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
    let step: SshStep = 'version exchange'
    const asking: Asking = { opened: 0, outputs: [] }
    const limitMs = Math.max(timeoutMs, 1000)
    const timer = setTimeout(() => {
      // The builder's first bytes are its SSH version line, and the key exchange follows it. Read off the socket's
      // count: a listener of the preflight's own would start the socket flowing before ssh2 listens.
      if (step === 'version exchange' && socket.bytesRead > 0) step = 'key exchange'
      timedOut(builder, observation, { step, asking, seconds: Math.round(limitMs / 1000) })
      finish()
    }, limitMs)
    client.on('handshake', () => (step = 'authentication'))
    client.on('ready', () => {
      step = 'command'
      observation.authenticated = true
      void askBuilder(client, builder, asking).then(answer => {
        if (typeof answer === 'string') observation.error = answer
        else observation.facts = answer
        finish()
      })
    })
    client.on('error', (error: Error & { level?: string }) => {
      if (error.level === 'client-authentication') observation.authenticated = false
      else if (observation.presented === undefined || isPinned(observation)) observation.error = error.message
      finish()
    })
    client.on('close', finish)
    client.connect(connectConfig(builder, socket, key, observation))
  })
}

function connectConfig(
  builder: BuilderRequest,
  socket: Socket,
  key: PrivateKey,
  observation: Observation
): ssh2.ConnectConfig {
  // Ask for the pinned key's type first, as OpenSSH does when known_hosts has one, so a builder with several host
  // keys presents the pinned one.
  const pinnedTypes = observation.pinned.map(pin => pin.type)
  const order = [...new Set([...pinnedTypes, ...DEFAULT_ORDER])].flatMap(type => KEY_ALGORITHMS[type] ?? [])
  return {
    sock: socket,
    username: builder.user,
    privateKey: key.text,
    // Straight to the key: without this, ssh2 first asks for method "none" to learn the methods, one more round
    // trip, which waits on OpenSSH's sshd even on loopback.
    authHandler: ['publickey'],
    algorithms: { serverHostKey: order },
    // The preflight's own timer names the step that hung; ssh2's would only say "handshake".
    readyTimeout: 0,
    hostVerifier: (blob: Buffer): boolean => {
      observation.presented = hostKeyOf(blob)
      return isPinned(observation)
    }
  }
}

/** What the preflight knows when its time is up, said as the step that hung. */
function timedOut(
  builder: BuilderRequest,
  observation: Observation,
  at: { step: SshStep; asking: Asking; seconds: number }
): void {
  const { asking, seconds } = at
  const within = `within ${seconds} s`
  const [about, store] = asking.outputs
  if (asking.greeting !== undefined) {
    // The forced nix-daemon shook hands, and its store did not answer.
    observation.facts = daemonFacts(asking.greeting, `no answer ${within}`)
  } else if (about !== undefined && store === undefined) {
    // Everything but the store check answered: the builder's store (its nix-daemon) hangs.
    const facts = parseFacts(builder.protocol, about, builder.remoteProgram)
    observation.facts = { ...facts, storeAnswers: false, storeError: `no answer ${within}` }
  } else {
    observation.error ??= stalledAt(at.step, asking, builder.user, within)
  }
}

function stalledAt(step: SshStep, asking: Asking, user: string, within: string): string {
  if (step === 'version exchange')
    return `the builder accepted the TCP connection but sent no SSH version line ${within}`
  if (step === 'key exchange')
    return `the builder sent its SSH version line, but the key exchange did not end ${within}`
  if (step === 'authentication')
    return `the SSH key exchange ended, but the builder did not answer the authentication as ${user} ${within}`
  if (asking.opened === 0) return `logged in, but the builder opened no session channel ${within}`
  if (asking.access === 'nix-store --serve')
    return `the key runs only nix-store --serve, which did not answer its handshake ${within}`
  if (asking.access === 'nix-daemon')
    return `the key runs only nix-daemon, which did not end its handshake ${within}`
  return `logged in, but the facts command printed nothing ${within} (neither a shell nor Nix's own protocol answered)`
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
