import { describe, expect, it } from 'vitest'
import { isTrustedUser, parseShowConfig } from '../../src/probe.js'

describe('isTrustedUser', () => {
  it('trusts a user named in trusted-users', () => {
    expect(isTrustedUser('runner', ['runner', 'docker'], ['root', 'runner'])).toBe(true)
  })

  it('trusts a member of a listed @group', () => {
    expect(isTrustedUser('runner', ['runner', 'wheel'], ['root', '@wheel'])).toBe(true)
  })

  it('trusts everyone when * is listed', () => {
    expect(isTrustedUser('runner', [], ['*'])).toBe(true)
  })

  it('does not trust anyone else', () => {
    expect(isTrustedUser('runner', ['runner', 'nix-users'], ['root'])).toBe(false)
    expect(isTrustedUser('runner', ['runner'], [])).toBe(false)
  })

  it('does not confuse a group name with a user name, or a user with a @group', () => {
    expect(isTrustedUser('wheel', ['users'], ['@wheel'])).toBe(false)
    expect(isTrustedUser('runner', ['wheel'], ['wheel'])).toBe(false)
    expect(isTrustedUser('runner', ['runner'], ['runner2', 'unner', '@'])).toBe(false)
  })
})

describe('parseShowConfig', () => {
  it('reads the {"name": {"value": …}} form of Nix 2.8', () => {
    const json = JSON.stringify({
      builders: {
        aliases: [],
        defaultValue: '@/etc/nix/machines',
        description: '…',
        value: '@/etc/nix/machines'
      },
      'builders-use-substitutes': { defaultValue: false, value: true },
      'trusted-users': { defaultValue: ['root'], value: ['root', 'runner'] },
      'max-jobs': { value: 1 },
      system: { value: 'x86_64-linux' }
    })
    expect(parseShowConfig(json)).toEqual({
      builders: '@/etc/nix/machines',
      'builders-use-substitutes': true,
      'trusted-users': ['root', 'runner'],
      'max-jobs': 1,
      system: 'x86_64-linux'
    })
  })

  it('reads the plain {"name": value} form', () => {
    expect(parseShowConfig('{"builders":"","trusted-users":"root runner","substitute":false}')).toEqual({
      builders: '',
      'trusted-users': 'root runner',
      substitute: false
    })
  })

  it('keeps an object value that is not a {value} wrapper, and a null', () => {
    expect(parseShowConfig('{"a":{"x":1},"b":null}')).toEqual({ a: { x: 1 }, b: null })
  })

  it('returns nothing for JSON that is not an object', () => {
    expect(parseShowConfig('null')).toEqual({})
    expect(parseShowConfig('"x"')).toEqual({})
  })

  it('throws on text that is not JSON', () => {
    expect(() => parseShowConfig('warning: unknown setting\n{}')).toThrow(SyntaxError)
  })
})
