import { spawnSync } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import { Input } from '../../../src/inputs/constants.js'
import { takeInputs } from '../../../src/inputs/settings.js'

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
    const read = takeInputs()
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
    process.env.INPUT_MODE = 'canary'
    const read = takeInputs()
    expect(read(Input.Mode)).toBe('canary')
    expect(read(Input.Mode)).toBe('canary')
  })
})
