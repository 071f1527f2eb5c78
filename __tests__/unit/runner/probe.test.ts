import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { groupsOf, homeOf, isTrustedUser } from '../../../src/runner/probe.js'

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

describe("the probe's questions to the user database", () => {
  const stuckPath = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'nix-offload-probe-'))
    for (const name of ['id', 'sh']) {
      writeFileSync(join(dir, name), '#!/bin/sh\nexec sleep 100\n')
      chmodSync(join(dir, name), 0o755)
    }
    return dir
  }

  it('fail at their bound, naming the command that hung', async () => {
    const dir = stuckPath()
    try {
      const question = { env: { PATH: `${dir}:/usr/bin:/bin` }, timeoutMs: 100 }
      await expect(groupsOf('runner', question)).rejects.toThrow(/`id -Gn runner` hung/)
      await expect(homeOf('root', question)).rejects.toThrow(/`sh -c echo ~root` hung/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('still answer on a working system', async () => {
    expect(await homeOf('root')).toMatch(/^\//)
    expect(Array.isArray(await groupsOf('root'))).toBe(true)
  })
})
