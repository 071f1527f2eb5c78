import ssh2 from 'ssh2'
import { describe, expect, it } from 'vitest'
import { Input } from '../../../src/inputs/constants.js'
import { InputError } from '../../../src/inputs/errors.js'
import { nixBeside, parseRemoteProgram, programFor } from '../../../src/inputs/remote-program.js'
import { type InputReader, parseSettings, type Settings } from '../../../src/inputs/settings.js'
import { readableKeyPair } from '../support/ssh-keys.js'

type Inputs = Partial<Record<`${Input}`, string>>

const clientKey = readableKeyPair(() => ssh2.utils.generateKeyPairSync('ed25519', { comment: 'ci@example' }))
const TWO_BUILDERS: Inputs = {
  host: 'mac.example.com',
  user: 'nixbuilder',
  'ssh-private-key': clientKey.private,
  builders: 'ssh://root@linux.example.com x86_64-linux'
}

function parse(overrides: Inputs): Settings {
  const values: Inputs = { ...TWO_BUILDERS, ...overrides }
  const read: InputReader = name => values[name] ?? ''
  return parseSettings(read, { system: 'aarch64-darwin' })
}

function refusal(value: string, base: Inputs = {}): InputError {
  try {
    parse({ ...base, 'remote-program': value })
  } catch (error) {
    if (error instanceof InputError) return error
    throw error
  }
  throw new Error(`accepted remote-program ${JSON.stringify(value)}`)
}

describe('remote-program', () => {
  it("leaves every builder to Nix's default (the program on its PATH) when empty", () => {
    expect(parse({}).builders.map(b => b.remoteProgram)).toEqual([undefined, undefined])
    expect(parse({ 'remote-program': '  ' }).builders.map(b => b.remoteProgram)).toEqual([
      undefined,
      undefined
    ])
  })

  it("takes a directory of Nix's programs: nix-daemon for ssh-ng builders, nix-store for ssh ones", () => {
    for (const value of ['/nix/var/nix/profiles/default/bin', '/nix/var/nix/profiles/default/bin/ ']) {
      expect(parse({ 'remote-program': value }).builders.map(b => [b.protocol, b.remoteProgram])).toEqual([
        ['ssh-ng', '/nix/var/nix/profiles/default/bin/nix-daemon'],
        ['ssh', '/nix/var/nix/profiles/default/bin/nix-store']
      ])
    }
  })

  it('takes the program itself when every builder runs it', () => {
    const daemon = '/nix/var/nix/profiles/default/bin/nix-daemon'
    const settings = parse({ 'remote-program': daemon, builders: 'ssh-ng://nix@b2.example.com' })
    expect(settings.builders.map(b => b.remoteProgram)).toEqual([daemon, daemon])
    expect(parseRemoteProgram('/opt/nix/nix-store')).toEqual({ directory: '/opt/nix', program: 'nix-store' })
  })

  it('refuses a program that a builder of the other protocol does not run, naming the input and the fix', () => {
    const error = refusal('/nix/var/nix/profiles/default/bin/nix-daemon')
    expect(error.input).toBe(Input.RemoteProgram)
    expect(error.message).toMatch(
      /^Input 'remote-program': names nix-daemon, but the ssh builder of input 'builders'/
    )
    expect(error.message).toContain('`remote-program: /nix/var/nix/profiles/default/bin`')
  })

  it.each([
    ['a relative path', 'bin/nix-daemon'],
    ['a bare name', 'nix-daemon'],
    ['a home-relative path', '~/.nix-profile/bin'],
    ['a space', '/Applications/Nix Tools/bin'],
    ['a query separator', '/nix/bin&ssh-key=/root/.ssh/id'],
    ['a query start', '/nix/bin?x=1'],
    ['a shell expansion', '/nix/$(reboot)/bin'],
    ['a command separator', '/nix/bin;reboot'],
    ['a quote', "/nix/bin'"],
    ['a newline', '/nix/bin\n/usr/bin'],
    ['a percent-encoding', '/nix/b%69n'],
    ['a plus, which Nix would print percent-encoded', '/nix/store/abc-nix-2.8+1/bin'],
    ['a parent directory', '/nix/../usr/bin'],
    ['a doubled slash', '/nix//bin']
  ])('refuses %s before anything is written, naming the input and the fix', (_, value) => {
    const error = refusal(value)
    expect(error.input).toBe(Input.RemoteProgram)
    expect(error.message).toMatch(/^Input 'remote-program': ".*" is not an absolute path/)
    expect(error.message).toContain('remote-program: /nix/var/nix/profiles/default/bin')
    expect(error.message).not.toMatch(/[\n\r]/)
  })

  it('names the program for each protocol, and the nix beside it', () => {
    expect(programFor('ssh-ng', undefined)).toBe('nix-daemon')
    expect(programFor('ssh', { directory: '/usr/bin' })).toBe('/usr/bin/nix-store')
    expect(nixBeside('/nix/var/nix/profiles/default/bin/nix-daemon')).toBe(
      '/nix/var/nix/profiles/default/bin/nix'
    )
    expect(nixBeside('nix-daemon')).toBe('nix')
  })
})
