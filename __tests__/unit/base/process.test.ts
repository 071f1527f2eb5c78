import { describe, expect, it } from 'vitest'
import { type AddressInfo, connect, createServer, type Socket } from 'node:net'
import {
  childEnvironment,
  DEFAULT_TIMEOUT_MS,
  DRAIN_MS,
  runCommand,
  startCompanion,
  stderrTail
} from '../../../src/base/process.js'

describe('childEnvironment', () => {
  it('keeps what Nix needs and drops the step inputs and the runner tokens', () => {
    const env = childEnvironment({
      PATH: '/usr/bin',
      HOME: '/home/runner',
      NIX_SSHOPTS: '-F /tmp/x',
      'INPUT_SSH-PRIVATE-KEY': 'secret',
      INPUT_HOST: 'b.example',
      input_lowercase: 'also an input',
      ACTIONS_RUNTIME_TOKEN: 'token',
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'oidc',
      ACTIONS_RESULTS_URL: 'http://cache',
      UNSET: undefined
    })
    expect(env).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/runner',
      NIX_SSHOPTS: '-F /tmp/x',
      ACTIONS_RESULTS_URL: 'http://cache'
    })
  })

  it('is what every child started by runCommand sees, also when it inherits the environment', async () => {
    process.env['INPUT_SSH-PRIVATE-KEY'] = 'secret body'
    try {
      const result = await runCommand('sh', ['-c', 'env'])
      expect(result.stdout.toString()).not.toContain('secret body')
      expect(result.stdout.toString()).toContain('PATH=')
    } finally {
      delete process.env['INPUT_SSH-PRIVATE-KEY']
    }
  })
})

describe('runCommand with a signal', () => {
  it('stops the command when aborted, and one aborted before it started', async () => {
    const controller = new AbortController()
    const running = runCommand('sleep', ['30'], { signal: controller.signal })
    setTimeout(() => controller.abort(), 50)
    // Ended by SIGTERM, long before the 30 s it asked for (the test's own timeout is 5 s).
    expect((await running).code).not.toBe(0)
    const already = new AbortController()
    already.abort()
    expect((await runCommand('sleep', ['30'], { signal: already.signal })).code).not.toBe(0)
  })

  it('leaves a command that ends first alone', async () => {
    const controller = new AbortController()
    const result = await runCommand('sh', ['-c', 'echo done'], { signal: controller.signal })
    controller.abort()
    expect(result).toMatchObject({ code: 0 })
    expect(result.stdout.toString()).toBe('done\n')
  })
})

describe('runCommand with a promised input', () => {
  it('starts at once and writes the input once it is known', async () => {
    let hand: (text: string) => void = () => undefined
    const running = runCommand('cat', [], { input: new Promise<string>(resolve => (hand = resolve)) })
    setTimeout(() => hand('late\n'), 20)
    expect((await running).stdout.toString()).toBe('late\n')
    const refused = await runCommand('cat', [], { input: Promise.reject(new Error('no question')) })
    expect(refused).toMatchObject({ code: 0, stderr: '' })
    expect(refused.stdout.toString()).toBe('')
  })
})

describe('startCompanion', () => {
  it('is ready at its ready line, and ends by itself when its input is closed', async () => {
    const companion = startCompanion('sh', ['-c', 'echo starting; echo ready; exec cat >/dev/null'], 'ready')
    expect(await companion.ready).toBeUndefined()
    expect(await companion.close(5_000)).toBe(true)
  })

  it('is stopped when it does not end within the wait after its input is closed', async () => {
    const companion = startCompanion('sh', ['-c', 'echo ready; exec sleep 30'], 'ready')
    expect(await companion.ready).toBeUndefined()
    expect(await companion.close(100)).toBe(false)
  })

  it('says how it ended when it ends, or is stopped by its time bound, before it is ready', async () => {
    const failed = await startCompanion('sh', ['-c', 'echo nope >&2; exit 3'], 'ready').ready
    expect(failed).toMatchObject({ code: 3, stderr: 'nope\n' })
    const hung = await startCompanion('sh', ['-c', 'exec sleep 30'], 'ready', { timeoutMs: 100 }).ready
    expect(hung?.timedOut).toBe(true)
  })

  it('with a transport: uses the socket as its stdin and stdout, is ready on stderr, and ends when stopped', async () => {
    const server = createServer()
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const accepted = new Promise<Socket>(resolve => server.once('connection', resolve))
    const socket = connect({ host: '127.0.0.1', port })
    socket.pause()
    await new Promise(resolve => socket.once('connect', resolve))
    // The far end speaks first, before the child exists: the child must still get every byte.
    const far = await accepted
    far.write('ping\n')
    const companion = startCompanion('sh', ['-c', 'echo ready >&2; exec cat'], 'ready', { transport: socket })
    expect(socket.destroyed).toBe(true)
    expect(await companion.ready).toBeUndefined()
    const echoed = new Promise<string>(resolve =>
      far.once('data', (chunk: Buffer) => resolve(chunk.toString()))
    )
    expect(await echoed).toBe('ping\n')
    expect(await companion.close(5_000)).toBe(true)
    far.destroy()
    server.close()
  })
})

describe('runCommand bounds', () => {
  it('resolves soon after the command exits, though a grandchild still holds its stdout', async () => {
    const started = Date.now()
    const result = await runCommand('sh', ['-c', 'sleep 30 & echo hi'])
    expect(Date.now() - started).toBeLessThan(DRAIN_MS + 1_500)
    expect(result).toMatchObject({ code: 0 })
    expect(result.stdout.toString()).toBe('hi\n')
  })

  it('stops a stuck command at its bound, and its stderr names the command that hung', async () => {
    const started = Date.now()
    const result = await runCommand('sleep', ['100'], { timeoutMs: 100 })
    expect(Date.now() - started).toBeLessThan(3_000)
    expect(result.timedOut).toBe(true)
    expect(result.code).not.toBe(0)
    expect(stderrTail(result.stderr)).toContain('`sleep 100` hung')
  })

  it('has a bound when its caller gives none, and none only when asked', () => {
    expect(DEFAULT_TIMEOUT_MS).toBeLessThanOrEqual(60_000)
  })

  it('counts the bound from the moment a promised input is known', async () => {
    let hand: (text: string) => void = () => undefined
    const running = runCommand('sh', ['-c', 'read line; echo "$line"'], {
      timeoutMs: 200,
      input: new Promise<string>(resolve => (hand = resolve))
    })
    setTimeout(() => hand('late\n'), 400)
    const result = await running
    expect(result.timedOut).toBeUndefined()
    expect(result.stdout.toString()).toBe('late\n')
  })
})
