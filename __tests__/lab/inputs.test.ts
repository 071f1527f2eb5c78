import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { builder, builderInputs, type Lab, loadLab, runMain, secretLines, visibleLog } from './harness.js'
import { watchFiles } from './setup.js'

const lab: Lab = loadLab()
const b = builder(lab, 'b')
const good = builderInputs(lab, 'a')
const knownB = `[127.0.0.1]:${b.port} ${lab.builders[1]?.hostPublicKey ?? ''}`

function passphraseKey(): string {
  const dir = mkdtempSync('/tmp/nix-offload-key-')
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'a passphrase', '-f', join(dir, 'key')])
  return readFileSync(join(dir, 'key'), 'utf8')
}

const cases: [string, Record<string, string>, string][] = [
  ['a newline in user', { user: 'nixbuilder\nHost *' }, 'user'],
  [
    'a nix.conf line smuggled into systems',
    { systems: 'x86_64-linux\nbuilders = ssh://evil x86_64-linux' },
    'systems'
  ],
  ['port 99999', { port: '99999' }, 'port'],
  ['port 0', { port: '0' }, 'port'],
  ['a comment in host', { host: '127.0.0.1 #evil' }, 'host'],
  ['a semicolon in host', { host: '127.0.0.1;evil' }, 'host'],
  [
    'an ssh config line smuggled into host-public-key',
    { 'host-public-key': 'ssh-ed25519 AAAA\nHost *' },
    'host-public-key'
  ],
  ['no ssh-private-key', { 'ssh-private-key': '' }, 'ssh-private-key'],
  [
    'a public key as the private key',
    { 'ssh-private-key': good['host-public-key'] ?? '' },
    'ssh-private-key'
  ],
  ['a key with a passphrase', { 'ssh-private-key': passphraseKey() }, 'ssh-private-key'],
  ['a machines separator in supported-features', { 'supported-features': 'kvm;evil' }, 'supported-features'],
  ['max-jobs 0', { 'max-jobs': '0' }, 'max-jobs'],
  ['a bad protocol', { protocol: 'http' }, 'protocol'],
  ['a bad boolean', { 'require-remote': 'yes' }, 'require-remote'],
  ['an option as installable', { installables: '--impure' }, 'installables'],
  ['an unclosed quote in args', { args: "--expr 'unclosed" }, 'args'],
  [
    'a builders line with nine columns',
    { builders: `ssh-ng://u@127.0.0.1:${b.port} x86_64-linux - 1 1 - - - extra`, 'known-hosts': knownB },
    'builders'
  ],
  [
    'a broken known-hosts line',
    {
      builders: `ssh-ng://nixbuilder@127.0.0.1:${b.port}`,
      'known-hosts': `[127.0.0.1]:${b.port} ssh-ed25519`
    },
    'known-hosts'
  ]
]

describe('bad inputs', () => {
  it.each(cases)('refuses %s, naming the input, before writing anything', async (_, inputs, input) => {
    const filesKept = watchFiles(lab)
    const main = await runMain(lab, { ...good, installables: 'drv', ...inputs })
    expect(main.code).toBe(1)
    const errors = visibleLog(main)
      .split('\n')
      .filter(line => line.startsWith('::error'))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(new RegExp(`^::error title=nix-offload%3A input ${input}::Input '${input}'`))
    expect(main.state).toEqual({})
    expect(main.outputs).toEqual({})
    expect(main.env).toEqual({})
    filesKept()
    for (const line of secretLines(lab.clientKey)) expect(visibleLog(main) + main.files).not.toContain(line)
  })
})
