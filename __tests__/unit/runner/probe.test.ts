import { describe, expect, it } from 'vitest'
import { isTrustedUser } from '../../../src/runner/probe.js'

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
