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
