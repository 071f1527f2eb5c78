import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Builder, configureBuilders } from '../../../src/inputs/index.js'
import { makeStorePlan } from '../../../src/runner/plan.js'
import { pingStores } from '../../../src/runner/apply.js'
import { builderWith, settingsWith } from '../support/settings.js'

/**
 * The remote-store plan's check of a builder, with a stand-in `ssh` that records its arguments: like OpenSSH, it runs
 * LocalCommand (here: prints the ready line) once connected, and with `-N` runs nothing on the builder and stays.
 */
let dir = ''
let path = ''
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nix-offload-store-ping-'))
  const ssh = join(dir, 'ssh')
  writeFileSync(
    ssh,
    [
      '#!/bin/sh',
      `printf '%s\\n' "$@" > ${dir}/ssh.args`,
      'for word in "$@"; do case "$word" in LocalCommand=*) echo "${word#LocalCommand=echo }";; esac; done',
      'for word in "$@"; do [ "$word" = -N ] && exec sleep 30; done',
      'exit 0'
    ].join('\n')
  )
  chmodSync(ssh, 0o755)
  path = process.env.PATH ?? ''
  process.env.PATH = `${dir}:${path}`
})
afterEach(() => {
  process.env.PATH = path
  rmSync(dir, { recursive: true, force: true })
})

function builder(overrides: Partial<Builder> = {}): Builder {
  return builderWith({ host: '127.0.0.1', port: 1, user: 'nix-ssh', ...overrides })
}

function args(): string[] {
  return readFileSync(join(dir, 'ssh.args'), 'utf8').trimEnd().split('\n')
}

describe('pingStores for the remote-store plan, without multiplexing', () => {
  it('runs `true` through the shell of a builder that has one', async () => {
    const plan = makeStorePlan(
      settingsWith({ multiplex: false }),
      configureBuilders([builder()], 'abc123'),
      'abc123',
      dir
    )
    const [reach] = await pingStores(plan, undefined)
    expect(reach?.ok).toBe(true)
    expect(args().at(-1)).toBe('true')
  })

  it('runs no command on a builder whose key runs only nix-daemon: -N, ready from this end', async () => {
    const plan = makeStorePlan(
      settingsWith({ multiplex: false }),
      configureBuilders([builder({ access: 'nix-daemon' })], 'abc123'),
      'abc123',
      dir
    )
    const started = Date.now()
    const [reach] = await pingStores(plan, undefined)
    expect(reach?.ok).toBe(true)
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(args()).toContain('-N')
    expect(args()).not.toContain('true')
    expect(args()).toContain('PermitLocalCommand=yes')
  })
})
