import ssh2 from 'ssh2'
import { afterEach, describe, expect, it } from 'vitest'
import { inspectBuilder } from '../../../src/builders/preflight.js'
import type { BuilderRequest, KnownHostsLine, PrivateKey } from '../../../src/inputs/index.js'
import { AUTO } from '../../../src/inputs/index.js'
import { parseKnownHostsLine, parsePrivateKey } from '../../../src/inputs/keys.js'
import { requestWith } from '../support/builders.js'
import { readableKeyPair } from '../support/ssh-keys.js'

/**
 * The preflight against an SSH server in this process (ssh2's Server, the real protocol): the builder's side answers
 * each facts command by what it asks, the way the lab builders answered (Nix 2.34), and the store's answer comes first
 * although it is the last of the answer.
 */
const ANSWERS: [pattern: RegExp, answer: string][] = [
  [
    /command -v/,
    '@@nix-offload found yes\n@@nix-offload version nix-daemon (Nix) 2.34.8\n@@nix-offload user nixbuilder\n' +
      '@@nix-offload groups nixbuilder\n@@nix-offload cores 4\n@@nix-offload free 1024\n'
  ],
  [
    /config show/,
    '@@nix-offload config\n{"system":{"value":"x86_64-linux"},"trusted-users":{"value":["root"]}}\n\n'
  ],
  [/store ping/, '@@nix-offload store 0 \n']
]

/** How many commands the preflight runs at once. */
const COMMANDS = 2

interface Builder {
  port: number
  hostKey: KnownHostsLine
  clientKey: PrivateKey
  /** The most sessions that were open at once. */
  mostAtOnce: () => number
  /** How many session channels the server refused. */
  refused: () => number
  close: () => Promise<void>
}

let running: Builder | undefined
afterEach(async () => {
  await running?.close()
  running = undefined
})

/** An SSH server that allows `maxSessions` sessions at once, as sshd's MaxSessions does, and answers slowly. */
async function startBuilder(maxSessions: number): Promise<Builder> {
  const host = readableKeyPair(() => ssh2.utils.generateKeyPairSync('ed25519'))
  const client = readableKeyPair(() => ssh2.utils.generateKeyPairSync('ed25519'))
  const clientKey = parsePrivateKey(client.private)
  if (typeof clientKey === 'string') throw new Error(clientKey)
  const [type = '', blob = ''] = host.public.split(' ')
  let open = 0
  let most = 0
  let refused = 0
  const waiting: (() => void)[] = []
  const server = new ssh2.Server({ hostKeys: [host.private] }, connection => {
    connection.on('authentication', context => {
      if (context.method === 'publickey') context.accept()
      else context.reject(['publickey'])
    })
    connection.on('ready', () => {
      connection.on('session', (accept, reject) => {
        if (open >= maxSessions) {
          refused++
          reject()
          return
        }
        open++
        most = Math.max(most, open)
        const session = accept()
        session.on('exec', (acceptExec, _reject, info) => {
          const stream = acceptExec()
          const answer = ANSWERS.filter(([pattern]) => pattern.test(info.command))
            .map(([, text]) => text)
            .join('')
          const delayMs = /store ping/.test(info.command) ? 5 : 30
          waiting.push(() =>
            setTimeout(() => {
              stream.write(answer)
              stream.exit(0)
              stream.end()
              open--
            }, delayMs)
          )
          // Nothing is answered before as many sessions are open as the server allows (two at most), so that a slow
          // test machine cannot turn "at once" into "one after the other".
          if (open >= Math.min(maxSessions, COMMANDS)) for (const answer of waiting.splice(0)) answer()
        })
      })
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const hostKey = parseKnownHostsLine(`[127.0.0.1]:${port} ${type} ${blob}`)
  if (typeof hostKey === 'string') throw new Error(hostKey)
  return {
    port,
    hostKey,
    clientKey,
    mostAtOnce: () => most,
    refused: () => refused,
    close: () => new Promise(resolve => server.close(() => resolve()))
  }
}

function request(port: number): BuilderRequest {
  return requestWith({
    host: '127.0.0.1',
    port,
    systems: AUTO,
    maxJobs: AUTO,
    supportedFeatures: AUTO,
    origin: 'host'
  })
}

/** The preflight of `builder`, as the action runs it, with its pinned host key and the client key it accepts. */
function inspect(builder: Builder): ReturnType<typeof inspectBuilder> {
  return inspectBuilder(request(builder.port), [builder.hostKey], builder.clientKey, {
    connectTimeoutMs: 5_000,
    timeoutMs: 10_000
  })
}

describe('inspectBuilder', () => {
  it('runs the facts commands at once, and reads them in their order whatever order they end in', async () => {
    running = await startBuilder(10)
    const seen = await inspect(running)
    expect(seen.error).toBeUndefined()
    expect(seen.authenticated).toBe(true)
    expect(running.mostAtOnce()).toBe(COMMANDS)
    expect(seen.facts).toMatchObject({
      programFound: true,
      nixVersion: '2.34.8',
      user: 'nixbuilder',
      cores: 4,
      system: 'x86_64-linux',
      trustedUsers: ['root'],
      storeAnswers: true
    })
  })

  it('runs them one after the other on a builder that allows one session at a time (MaxSessions 1)', async () => {
    running = await startBuilder(1)
    const seen = await inspect(running)
    expect(seen.error).toBeUndefined()
    expect(running.refused()).toBeGreaterThan(0)
    expect(running.mostAtOnce()).toBe(1)
    expect(seen.facts).toMatchObject({ nixVersion: '2.34.8', system: 'x86_64-linux', storeAnswers: true })
  })
})
