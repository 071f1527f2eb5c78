import { spawnSync } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import { BUILD_INPUTS, CANARY_INPUTS, Input } from '../../../src/inputs/constants.js'
import { takeBuildInputs, takeCanaryInputs, takeInputs } from '../../../src/inputs/settings.js'

const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----'

function inputVariables(): string[] {
  return Object.keys(process.env).filter(name => /^INPUT_/i.test(name))
}

describe('takeInputs', () => {
  afterEach(() => {
    for (const name of inputVariables()) Reflect.deleteProperty(process.env, name)
  })

  it('reads each input as @actions/core does, and leaves none in the environment of a process started later', () => {
    process.env['INPUT_SSH-PRIVATE-KEY'] = `${KEY}\n`
    process.env.INPUT_HOST = '  builder.example.com '
    process.env.INPUT_SOMETHING_ELSE = 'not an input of the action'
    const read = takeInputs(BUILD_INPUTS)
    expect(read(Input.SshPrivateKey)).toBe(KEY)
    expect(read(Input.Host)).toBe('builder.example.com')
    expect(read(Input.Port)).toBe('')
    expect(inputVariables()).toEqual([])
    // What @actions/cache's tar and zstd get: a child started with this process's own environment.
    const child = spawnSync('env', [], { encoding: 'utf8' })
    expect(child.status).toBe(0)
    expect(child.stdout).toContain('PATH=')
    expect(child.stdout).not.toMatch(/^INPUT_/im)
    expect(child.stdout).not.toContain('PRIVATE KEY')
  })

  it('answers the same on a second read, as the settings are parsed again once the runner probe speaks', () => {
    process.env['INPUT_MIN-FREE-GB'] = '20'
    const read = takeCanaryInputs()
    expect(read(Input.MinFreeGb)).toBe('20')
    expect(read(Input.MinFreeGb)).toBe('20')
  })

  it("reads only its action's inputs: the build's are empty to the canary, the canary's to the build", () => {
    const give = (): void => {
      process.env.INPUT_INSTALLABLES = '.#hello'
      process.env['INPUT_MIN-FREE-GB'] = '20'
      process.env.INPUT_HOST = 'builder.example.com'
    }
    give()
    const canary = takeCanaryInputs()
    expect([canary(Input.Installables), canary(Input.MinFreeGb), canary(Input.Host)]).toEqual([
      '',
      '20',
      'builder.example.com'
    ])
    give()
    const build = takeBuildInputs()
    expect([build(Input.Installables), build(Input.MinFreeGb), build(Input.Host)]).toEqual([
      '.#hello',
      '',
      'builder.example.com'
    ])
    expect(inputVariables()).toEqual([])
    // Between them, the two actions take every input, and share only the builders' and the step's own.
    expect(new Set([...BUILD_INPUTS, ...CANARY_INPUTS])).toEqual(new Set(Object.values(Input)))
  })
})

describe('takeBuildInputs and `mode`, which the main action does not take', () => {
  afterEach(() => {
    for (const name of inputVariables()) Reflect.deleteProperty(process.env, name)
  })

  it('refuses `mode: canary`, naming the canary action, and still clears the inputs (the key among them)', () => {
    process.env.INPUT_MODE = 'canary'
    process.env['INPUT_SSH-PRIVATE-KEY'] = KEY
    expect(() => takeBuildInputs()).toThrow(
      /^Input 'mode': "canary" is not a mode of this action, which only builds: the canary is its own action\. Use `uses: nix-offload\/nix-offload\/canary@v0`/
    )
    expect(inputVariables()).toEqual([])
  })

  it('refuses any other mode the same way, and lets `build` (what it does) or none through', () => {
    process.env.INPUT_MODE = 'check'
    expect(() => takeBuildInputs()).toThrow(/^Input 'mode': "check" is not a mode of this action/)
    for (const mode of ['build', ' build ', '']) {
      process.env.INPUT_MODE = mode
      process.env.INPUT_HOST = 'builder.example.com'
      expect(takeBuildInputs()(Input.Host), mode).toBe('builder.example.com')
    }
  })
})
