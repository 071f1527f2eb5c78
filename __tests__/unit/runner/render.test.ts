import { Input } from '../../../src/inputs/constants.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  renderMachineLine,
  renderMachines,
  renderMachinesBlock,
  renderNixConfBlock,
  renderNixSettings
} from '../../../src/runner/nix-config.js'
import type { ConfiguredBuilder } from '../../../src/inputs/index.js'
import { renderKnownHosts, renderSshConfig } from '../../../src/runner/ssh-config.js'

const KEY_BLOB = 'AAAAC3NzaC1lZDI1NTE5AAAAIK9FOpMsDI5XMSC1L3hqFU0cUvMIhEbq6uCOU+4YkSag'

function configured(overrides: Partial<ConfiguredBuilder> = {}): ConfiguredBuilder {
  return {
    protocol: 'ssh-ng',
    host: 'builder.example.com',
    port: 2222,
    user: 'nixbuilder',
    systems: ['x86_64-linux'],
    maxJobs: 1,
    speedFactor: 1,
    supportedFeatures: [],
    mandatoryFeatures: [],
    pinInput: Input.HostPublicKey,
    origin: "input 'host'",
    alias: 'nix-offload-a1b2c3-1',
    storeUri: 'ssh-ng://nixbuilder@nix-offload-a1b2c3-1',
    ...overrides
  }
}

const FILES = {
  identityFile: '/root/.ssh/nix-offload-a1b2c3/key',
  knownHostsFile: '/root/.ssh/nix-offload-a1b2c3/known_hosts'
}

describe('renderMachineLine', () => {
  it('writes - for the key path, empty feature lists and the host key', () => {
    expect(renderMachineLine(configured())).toBe(
      'ssh-ng://nixbuilder@nix-offload-a1b2c3-1 x86_64-linux - 1 1 - - -'
    )
  })

  it('joins lists with commas and writes the counts', () => {
    const line = renderMachineLine(
      configured({
        systems: ['x86_64-linux', 'i686-linux'],
        maxJobs: 8,
        speedFactor: 3,
        supportedFeatures: ['kvm', 'big-parallel'],
        mandatoryFeatures: ['benchmark']
      })
    )
    expect(line).toBe(
      'ssh-ng://nixbuilder@nix-offload-a1b2c3-1 x86_64-linux,i686-linux - 8 3 kvm,big-parallel benchmark -'
    )
  })

  it('never names the real host or port: those live in the ssh Host alias', () => {
    const line = renderMachineLine(configured({ host: '192.0.2.9', port: 2201 }))
    expect(line).not.toContain('192.0.2.9')
    expect(line).not.toContain('2201')
  })

  it('has exactly 8 whitespace-separated fields and no newline, # or ; for any valid builder', () => {
    const system = fc.stringMatching(/^[A-Za-z0-9_.]{1,8}(?:-[A-Za-z0-9_.]{1,8}){1,3}$/)
    const feature = fc.stringMatching(/^[A-Za-z0-9_.+-]{1,12}$/)
    const user = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/)
    const token = fc.stringMatching(/^[0-9a-f]{6}$/)
    const builder = fc
      .record({
        protocol: fc.constantFrom('ssh-ng' as const, 'ssh' as const),
        user,
        token,
        index: fc.integer({ min: 1, max: 50 }),
        systems: fc.uniqueArray(system, { minLength: 1, maxLength: 4 }),
        maxJobs: fc.integer({ min: 1, max: 999_999 }),
        speedFactor: fc.integer({ min: 1, max: 999_999 }),
        supportedFeatures: fc.uniqueArray(feature, { maxLength: 4 }),
        mandatoryFeatures: fc.uniqueArray(feature, { maxLength: 4 })
      })
      .map(({ token: t, index, ...rest }) => {
        const alias = `nix-offload-${t}-${index}`
        return configured({ ...rest, alias, storeUri: `${rest.protocol}://${rest.user}@${alias}` })
      })
    fc.assert(
      fc.property(builder, b => {
        const line = renderMachineLine(b)
        expect(line).not.toMatch(/[\n\r#;]/)
        const fields = line.split(/\s+/)
        expect(fields).toHaveLength(8)
        expect(fields[0]).toBe(b.storeUri)
        expect(fields[3]).toBe(String(b.maxJobs))
        expect(fields[4]).toBe(String(b.speedFactor))
      })
    )
  })
})

describe('renderMachines', () => {
  it('puts one builder per line with a final newline', () => {
    const second = configured({ alias: 'nix-offload-a1b2c3-2', storeUri: 'ssh://root@nix-offload-a1b2c3-2' })
    expect(renderMachines([configured(), second])).toBe(
      'ssh-ng://nixbuilder@nix-offload-a1b2c3-1 x86_64-linux - 1 1 - - -\n' +
        'ssh://root@nix-offload-a1b2c3-2 x86_64-linux - 1 1 - - -\n'
    )
  })
})

describe('renderSshConfig', () => {
  const text = renderSshConfig('a1b2c3', [configured()], FILES)
  const lines = text.split('\n')

  it('pins each builder through its own Host alias', () => {
    expect(lines.slice(1, 16)).toEqual([
      'Host nix-offload-a1b2c3-1',
      '  HostName builder.example.com',
      '  Port 2222',
      '  User nixbuilder',
      '  IdentityFile "/root/.ssh/nix-offload-a1b2c3/key"',
      '  IdentitiesOnly yes',
      '  UserKnownHostsFile "/root/.ssh/nix-offload-a1b2c3/known_hosts"',
      '  StrictHostKeyChecking yes',
      '  BatchMode yes',
      '  ConnectTimeout 10',
      '  ServerAliveInterval 15',
      '  ServerAliveCountMax 4',
      // Not multiplexing: pinned off, so that a Host * of the runner's own cannot switch it on.
      '  ControlMaster no',
      '  ControlPath none',
      'Host *'
    ])
  })

  it('is wrapped in begin and end marker lines carrying the token, and ends with a newline', () => {
    expect(lines[0]).toBe(
      '# nix-offload a1b2c3: begin (added by the nix-offload action, whose post step removes it)'
    )
    expect(lines.slice(-3)).toEqual(['Host *', '# nix-offload a1b2c3: end', ''])
  })

  it('writes one Host block per builder, in order, and a single Host * at the end', () => {
    const two = renderSshConfig(
      'a1b2c3',
      [configured(), configured({ alias: 'nix-offload-a1b2c3-2', host: '::1', port: 22, user: 'root' })],
      FILES
    )
    expect(two.split('\n').filter(line => line.startsWith('Host '))).toEqual([
      'Host nix-offload-a1b2c3-1',
      'Host nix-offload-a1b2c3-2',
      'Host *'
    ])
    expect(two).toContain('Host nix-offload-a1b2c3-2\n  HostName ::1\n  Port 22\n  User root\n')
  })
})

describe('renderKnownHosts', () => {
  it('writes one line per entry with its marker, and a final newline', () => {
    const key = { type: 'ssh-ed25519', blob: KEY_BLOB }
    expect(
      renderKnownHosts([
        { hosts: '[builder.example.com]:2222', key },
        { marker: '@revoked', hosts: 'old.example.com', key }
      ])
    ).toBe(
      `[builder.example.com]:2222 ssh-ed25519 ${KEY_BLOB}\n@revoked old.example.com ssh-ed25519 ${KEY_BLOB}\n`
    )
  })
})

describe('renderNixSettings', () => {
  it('names the machines file and builders-use-substitutes when asked', () => {
    expect(renderNixSettings('/root/.ssh/nix-offload-a1b2c3/machines', true)).toBe(
      'builders = @/root/.ssh/nix-offload-a1b2c3/machines\nbuilders-use-substitutes = true'
    )
  })

  it('leaves out what is not asked for', () => {
    expect(renderNixSettings(undefined, true)).toBe('builders-use-substitutes = true')
    expect(renderNixSettings('/m', false)).toBe('builders = @/m')
    expect(renderNixSettings(undefined, false)).toBe('')
  })
})

describe('renderNixConfBlock', () => {
  it('wraps the settings in marker lines (the file agent finds the block by them)', () => {
    expect(renderNixConfBlock('a1b2c3', 'builders-use-substitutes = true')).toBe(
      '# nix-offload a1b2c3: begin (added by the nix-offload action, whose post step removes it)\n' +
        'builders-use-substitutes = true\n# nix-offload a1b2c3: end\n'
    )
  })
})

describe('renderMachinesBlock', () => {
  it('wraps the machines lines in marker lines that Nix reads as comments', () => {
    const text = renderMachinesBlock('a1b2c3', [configured()])
    expect(text.split('\n')[0]).toMatch(/^# nix-offload a1b2c3: begin /)
    expect(text.endsWith('# nix-offload a1b2c3: end\n')).toBe(true)
    // Nix splits a machines file on newlines and `;` before it drops `#` comments (machines.cc): a `;` in a marker
    // would make the rest of the comment a machine line ("bad machine specification", seen on Nix 2.8).
    const specs = text
      .split(/[\n;]/)
      .map(line => line.replace(/#.*/, '').trim())
      .filter(line => line !== '')
    expect(specs).toEqual([renderMachineLine(configured())])
  })
})
