import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server as TcpServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import ssh2 from 'ssh2'
import { afterEach, describe, expect, it } from 'vitest'
import { judge } from '../../../src/builders/preflight-verdict.js'
import { inspectBuilder, type Observation } from '../../../src/builders/preflight.js'
import type { BuilderRequest, KnownHostsLine, PrivateKey } from '../../../src/inputs/index.js'
import { AUTO } from '../../../src/inputs/index.js'
import { parseKnownHostsLine, parsePrivateKey } from '../../../src/inputs/keys.js'
import { readableKeyPair } from '../support/ssh-keys.js'
import { builderWith } from '../support/settings.js'

/**
 * The preflight against builders whose key runs one command whatever the client asks (sshd's ForceCommand, or
 * `command=` in authorized_keys): an in-process ssh2 server runs the real `nix-daemon --stdio` or `nix-store --serve
 * --write` of this machine, on a throwaway store, for every exec request. And against servers that stall at each step
 * of an SSH session, for the words of the timeout.
 */

const HAS_NIX = spawnSync('nix-daemon', ['--version']).status === 0

interface Fixture {
  port: number
  hostKey: KnownHostsLine
  clientKey: PrivateKey
  close: () => Promise<void>
}

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function keys(): { host: { private: string; public: string }; clientKey: PrivateKey } {
  const host = readableKeyPair(() => ssh2.utils.generateKeyPairSync('ed25519'))
  const client = readableKeyPair(() => ssh2.utils.generateKeyPairSync('ed25519'))
  const clientKey = parsePrivateKey(client.private)
  if (typeof clientKey === 'string') throw new Error(clientKey)
  return { host, clientKey }
}

/** A throwaway store and Nix's own directories, so the real programs touch nothing of this machine's Nix. */
function throwawayNix(): { args: string[]; env: NodeJS.ProcessEnv } {
  const root = mkdtempSync(join(tmpdir(), 'nix-offload-restricted-'))
  cleanups.push(() => rmSync(root, { recursive: true, force: true }))
  const env = {
    ...process.env,
    NIX_CONF_DIR: join(root, 'etc'),
    NIX_STATE_DIR: join(root, 'state'),
    NIX_LOG_DIR: join(root, 'log')
  }
  return { args: ['--store', join(root, 'chroot')], env }
}

type SessionHandler = (connection: ssh2.Connection) => void

/** An ssh2 server that accepts the client key; `onReady` handles the logged-in connection (undefined: no auth answer). */
async function sshServer(onReady: SessionHandler | undefined): Promise<Fixture> {
  const { host, clientKey } = keys()
  const server = new ssh2.Server({ hostKeys: [host.private] }, connection => {
    connection.on('error', () => undefined)
    connection.on('authentication', context => {
      if (onReady === undefined) return
      if (context.method === 'publickey') context.accept()
      else context.reject(['publickey'])
    })
    if (onReady !== undefined) connection.on('ready', () => onReady(connection))
  })
  const port = await listen(server)
  const [type = '', blob = ''] = host.public.split(' ')
  const hostKey = parseKnownHostsLine(`[127.0.0.1]:${port} ${type} ${blob}`)
  if (typeof hostKey === 'string') throw new Error(hostKey)
  const close = (): Promise<void> => new Promise(resolve => server.close(() => resolve()))
  cleanups.push(close)
  return { port, hostKey, clientKey, close }
}

function listen(server: ssh2.Server | TcpServer): Promise<number> {
  return new Promise(resolve =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      resolve(typeof address === 'object' && address !== null ? address.port : 0)
    })
  )
}

/** Every exec runs `program` (its stdio the channel's), as a forced command does; `commands` records what was asked. */
function forced(program: string, args: string[], commands: string[] = []): SessionHandler {
  const nix = throwawayNix()
  return connection => {
    connection.on('session', accept => {
      accept().on('exec', (acceptExec, _reject, info) => {
        commands.push(info.command)
        const channel = acceptExec()
        const child = spawn(program, [...args, ...nix.args], { env: nix.env })
        cleanups.push(() => void child.kill())
        channel.pipe(child.stdin)
        child.stdout.pipe(channel)
        child.stderr.on('data', (chunk: Buffer) => channel.stderr.write(chunk))
        child.on('close', code => {
          channel.exit(code ?? 1)
          channel.end()
        })
      })
    })
  }
}

function request(port: number, overrides: Partial<BuilderRequest> = {}): BuilderRequest {
  return { ...builderWith({ host: '127.0.0.1', port, user: 'nix-ssh', maxJobs: 2 }), ...overrides }
}

function inspect(fixture: Fixture, builder: BuilderRequest, timeoutMs = 10_000): Promise<Observation> {
  return inspectBuilder(builder, [fixture.hostKey], fixture.clientKey, { connectTimeoutMs: 2_000, timeoutMs })
}

describe.skipIf(!HAS_NIX)('inspectBuilder on a key that runs only nix-daemon --stdio (the real one)', () => {
  it('sees the daemon at once, reads its Nix version, and times one store round trip', async () => {
    const fixture = await sshServer(forced('nix-daemon', ['--stdio']))
    const started = Date.now()
    const seen = await inspect(fixture, request(fixture.port))
    const tookMs = Date.now() - started
    expect(seen.error).toBeUndefined()
    expect(seen.facts).toMatchObject({
      access: 'nix-daemon',
      program: 'nix-daemon',
      programFound: true,
      storeAnswers: true
    })
    expect(seen.facts?.nixVersion).toMatch(/^\d+\.\d+/)
    expect(seen.facts?.protocolVersion).toMatch(/^1\.\d+$/)
    expect(seen.facts?.storeMs).toBeGreaterThan(0)
    expect(seen.facts?.unasked).toContain('systems')
    expect(tookMs).toBeLessThan(2_000)
  })

  it("passes the verdict with the inputs' values, and says what could not be asked", async () => {
    const fixture = await sshServer(forced('nix-daemon', ['--stdio']))
    const seen = await inspect(fixture, request(fixture.port))
    const { result, builder } = judge(request(fixture.port), seen, fixture.clientKey)
    expect(result.message).toBeUndefined()
    expect(result).toMatchObject({ healthy: true, access: 'nix-daemon', remoteProgram: 'nix-daemon' })
    expect(builder).toMatchObject({ access: 'nix-daemon', systems: ['x86_64-linux'], maxJobs: 2 })
  })

  it("refuses `auto` with the input to set, as the key cannot tell the builder's systems", async () => {
    const fixture = await sshServer(forced('nix-daemon', ['--stdio']))
    const asked = request(fixture.port, { systems: AUTO, maxJobs: AUTO })
    const { result } = judge(asked, await inspect(fixture, asked), fixture.clientKey)
    expect(result.cause).toBe('auto-undetectable')
    expect(result.message).toContain('runs only nix-daemon --stdio')
    expect(result.message).toContain("set 'systems', 'max-jobs'")
  })

  it('refuses protocol ssh on it: the daemon speaks ssh-ng', async () => {
    const fixture = await sshServer(forced('nix-daemon', ['--stdio']))
    const asked = request(fixture.port, { protocol: 'ssh' })
    const { result } = judge(asked, await inspect(fixture, asked), fixture.clientKey)
    expect(result.cause).toBe('access-mismatch')
    expect(result.message).toContain("'protocol: ssh-ng'")
  })
})

describe.skipIf(!HAS_NIX)('inspectBuilder on a key that runs only nix-store --serve (the real one)', () => {
  it('sees the protocol mismatch, then reads the serve version on a channel of its own', async () => {
    const commands: string[] = []
    const fixture = await sshServer(forced('nix-store', ['--serve', '--write'], commands))
    const started = Date.now()
    const seen = await inspect(fixture, request(fixture.port, { protocol: 'ssh' }))
    expect(Date.now() - started).toBeLessThan(2_000)
    expect(seen.error).toBeUndefined()
    expect(seen.facts).toMatchObject({ access: 'nix-store --serve', program: 'nix-store', nixVersion: '' })
    expect(seen.facts?.protocolVersion).toMatch(/^2\.\d+$/)
    expect(commands.at(-1)).toBe('nix-store --serve --write')
  })

  it('fails an ssh-ng request at once, naming the restriction and the fix', async () => {
    const fixture = await sshServer(forced('nix-store', ['--serve', '--write']))
    const asked = request(fixture.port)
    const { result } = judge(asked, await inspect(fixture, asked), fixture.clientKey)
    expect(result.cause).toBe('access-mismatch')
    expect(result.message).toMatch(/runs only `nix-store --serve`.*'protocol: ssh' with 'strategy: hook'/)
  })

  it('fails remote-store, which needs ssh-ng', async () => {
    const fixture = await sshServer(forced('nix-store', ['--serve', '--write']))
    const asked = request(fixture.port, { protocol: 'ssh' })
    const seen = await inspect(fixture, asked)
    expect(judge(asked, seen, fixture.clientKey, '', 'hook').result.healthy).toBe(true)
    const { result } = judge(asked, seen, fixture.clientKey, '', 'remote-store')
    expect(result.cause).toBe('access-mismatch')
    expect(result.message).toContain("'strategy: remote-store' builds in the builder's own store over ssh-ng")
  })
})

describe('inspectBuilder names the step that hung', () => {
  async function rawServer(onConnection: (socket: import('node:net').Socket) => void): Promise<Fixture> {
    const { host, clientKey } = keys()
    const server = createServer(socket => {
      socket.on('error', () => undefined)
      onConnection(socket)
    })
    const port = await listen(server)
    const [type = '', blob = ''] = host.public.split(' ')
    const hostKey = parseKnownHostsLine(`[127.0.0.1]:${port} ${type} ${blob}`)
    if (typeof hostKey === 'string') throw new Error(hostKey)
    const sockets: import('node:net').Socket[] = []
    server.on('connection', socket => sockets.push(socket))
    const close = (): Promise<void> =>
      new Promise(resolve => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
    cleanups.push(close)
    return { port, hostKey, clientKey, close }
  }

  it('the SSH version exchange: the builder accepts the connection and says nothing', async () => {
    const fixture = await rawServer(() => undefined)
    const seen = await inspect(fixture, request(fixture.port), 1_000)
    expect(seen.error).toBe('the builder accepted the TCP connection but sent no SSH version line within 1 s')
  })

  it('the key exchange: the builder sends its version line and no more', async () => {
    const fixture = await rawServer(socket => socket.write('SSH-2.0-OpenSSH_9.6\r\n'))
    const seen = await inspect(fixture, request(fixture.port), 1_000)
    expect(seen.error).toBe(
      'the builder sent its SSH version line, but the key exchange did not end within 1 s'
    )
  })

  it('the authentication: the key exchange ends and the builder never answers the key', async () => {
    const fixture = await sshServer(undefined)
    const seen = await inspect(fixture, request(fixture.port), 1_000)
    expect(seen.presented).toBeDefined()
    expect(seen.error).toBe(
      'the SSH key exchange ended, but the builder did not answer the authentication as nix-ssh within 1 s'
    )
  })

  it('opening a channel: logged in, and the builder never answers the session request', async () => {
    const fixture = await sshServer(connection => connection.on('session', () => undefined))
    const seen = await inspect(fixture, request(fixture.port), 1_000)
    expect(seen.authenticated).toBe(true)
    expect(seen.error).toBe('logged in, but the builder opened no session channel within 1 s')
  })

  it('the command: a channel opens, and nothing ever answers on it', async () => {
    const fixture = await sshServer(connection =>
      connection.on('session', accept => accept().on('exec', acceptExec => void acceptExec()))
    )
    const seen = await inspect(fixture, request(fixture.port), 1_000)
    expect(seen.error).toMatch(/^logged in, but the facts command printed nothing within 1 s/)
    expect(seen.error).not.toContain('handshake')
  })
})
