import { describe, expect, it } from 'vitest'
import { childEnvironment, runCommand } from '../../../src/base/process.js'

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
