import ssh2 from 'ssh2'
import { describe, expect, it } from 'vitest'
import type { Input } from '../../../src/inputs/constants.js'
import { InputError } from '../../../src/inputs/errors.js'
import { parseSettings, type Settings } from '../../../src/inputs/settings.js'
import { readableKeyPair } from '../support/ssh-keys.js'

type Inputs = Partial<Record<`${Input}`, string>>

const clientKey = readableKeyPair(() => ssh2.utils.generateKeyPairSync('ed25519'))

const FLAKE_BUILD: Inputs = {
  host: 'builder.example.com',
  user: 'nixbuilder',
  'ssh-private-key': clientKey.private,
  installables: '.#heavy',
  evaluate: 'builder'
}

function parse(overrides: Inputs = {}): Settings {
  const values: Inputs = { ...FLAKE_BUILD, ...overrides }
  return parseSettings(name => values[name] ?? '', { system: 'x86_64-linux' })
}

function refusal(overrides: Inputs): InputError {
  try {
    parse(overrides)
  } catch (error) {
    if (error instanceof InputError) return error
    throw error
  }
  throw new Error(`accepted ${JSON.stringify(overrides)}`)
}

describe('evaluate', () => {
  it('is runner by default, and builder when asked', () => {
    expect(parse({ evaluate: '' }).evaluate).toBe('runner')
    expect(parse({ evaluate: ' runner ' }).evaluate).toBe('runner')
    expect(parse().evaluate).toBe('builder')
    expect(parse({ strategy: 'remote-store' }).evaluate).toBe('builder')
  })

  it('refuses another value, naming the input and both values', () => {
    const error = refusal({ evaluate: 'remote' })
    expect(error.message).toMatch(/^Input 'evaluate': "remote" is not a place to evaluate/)
    expect(error.message).toContain('runner (the default) or builder')
  })

  it('lets runner take whatever it took before', () => {
    expect(
      parse({ evaluate: 'runner', strategy: 'hook', installables: '', args: '-f default.nix hello' }).args
    ).toEqual(['-f', 'default.nix', 'hello'])
  })
})

describe('evaluate: builder refuses, before anything is written, what it cannot serve', () => {
  it('-f, --file and --expr installables: their imports cannot go to the builder', () => {
    for (const args of [
      '-f default.nix',
      '--file=default.nix',
      "--impure --expr '(import <nixpkgs> {}).hello'"
    ]) {
      const error = refusal({ args, installables: 'hello' })
      expect(error.input, args).toBe('evaluate')
      expect(error.message, args).toMatch(/^Input 'evaluate': 'builder' sends a flake/)
      expect(error.message, args).toContain("Set 'evaluate: runner'")
    }
  })

  it('a store path installable, which has nothing to evaluate', () => {
    const error = refusal({ installables: '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello.drv^out' })
    expect(error.message).toContain('is a store path')
    expect(error.message).toContain("Set 'evaluate: runner'")
    // A flake in the store with an attribute is a flake.
    expect(
      parse({ installables: '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-source#hello' }).installables
    ).toEqual(['/nix/store/0123456789abcdfghijklmnpqrsvwxyz-source#hello'])
  })

  it('strategy: hook, which evaluates on the runner', () => {
    const error = refusal({ strategy: 'hook' })
    expect(error.message).toContain("'strategy: hook' evaluates on the runner")
    expect(error.message).toContain("Set 'strategy: remote-store' (or auto), or set 'evaluate: runner'")
  })

  it('no installables: configure-only, or a build named in args alone', () => {
    expect(refusal({ installables: '' }).message).toContain("needs flake installables in 'installables'")
    expect(refusal({ installables: '', args: '--impure' }).message).toContain("Set 'evaluate: runner'")
  })

  it('out-links, which it does not make on the runner', () => {
    for (const args of ['-o result', '--out-link result', '--out-link=result']) {
      const error = refusal({ args })
      expect(error.message, args).toContain('makes no out-links on the runner')
      expect(error.message, args).toContain("'out-paths' output")
    }
  })
})
