import ssh2 from 'ssh2'
import { knownHostsLineMatches } from '../../../src/inputs/keys.js'
import { createHmac, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { Input } from '../../../src/inputs/constants.js'
import { InputError } from '../../../src/inputs/errors.js'
import {
  givenBuilders,
  type InputReader,
  type Settings,
  parseSettings,
  wantsBuild,
  withRunnerSystem
} from '../../../src/inputs/settings.js'
import { requestWith } from '../support/builders.js'
import { encryptedKeyPair, readableKeyPair } from '../support/ssh-keys.js'

type Inputs = Partial<Record<`${Input}`, string>>

// A throwaway builder host key made with `ssh-keygen -t ed25519 -C root@labA`.
const HOST_KEY_BLOB = 'AAAAC3NzaC1lZDI1NTE5AAAAIK9FOpMsDI5XMSC1L3hqFU0cUvMIhEbq6uCOU+4YkSag'
const HOST_KEY_LINE = `ssh-ed25519 ${HOST_KEY_BLOB} root@labA`
const HOST_KEY = { type: 'ssh-ed25519', blob: HOST_KEY_BLOB }
const DEFAULTS = { system: 'x86_64-linux' }

const clientKey = readableKeyPair(() => ssh2.utils.generateKeyPairSync('ed25519', { comment: 'ci@example' }))
const encryptedKey = encryptedKeyPair('correct horse')
const PRIVATE_KEY_TEXT = clientKey.private.trim() + '\n'

const MINIMAL: Inputs = {
  host: 'builder.example.com',
  user: 'nixbuilder',
  'ssh-private-key': clientKey.private,
  'host-public-key': HOST_KEY_LINE
}

function reader(values: Inputs): InputReader {
  return name => values[name] ?? ''
}

function parse(overrides: Inputs = {}, base: Inputs = MINIMAL): Settings {
  return parseSettings(reader({ ...base, ...overrides }), DEFAULTS)
}

function refusal(overrides: Inputs, base: Inputs = MINIMAL): InputError {
  try {
    parse(overrides, base)
  } catch (error) {
    if (error instanceof InputError) return error
    throw error
  }
  throw new Error(`accepted ${JSON.stringify(overrides)}`)
}

/** `ssh-keygen -H`: `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`. */
function hashedHost(name: string): string {
  const salt = randomBytes(20)
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

/** The secret part of a key file, and every 32-character stretch of it: none may appear in a message. */
function secretFragments(pem: string): string[] {
  const lines = pem.split('\n').filter(line => line !== '' && !line.startsWith('-----'))
  const windows = lines.flatMap(line =>
    Array.from({ length: Math.max(0, line.length - 31) }, (_, i) => line.slice(i, i + 32))
  )
  return [...lines, ...windows]
}

function expectNoSecret(message: string): void {
  for (const fragment of secretFragments(clientKey.private)) expect(message).not.toContain(fragment)
}

// eslint-disable-next-line no-control-regex -- a refused value must not forge log lines or workflow commands
const CONTROL = /[\u0000-\u001f\u007f]/

describe('parseSettings with one builder from host', () => {
  it('fills every default from a minimal configuration', () => {
    const settings = parse()
    expect(settings).toEqual({
      builders: [
        {
          protocol: 'ssh-ng',
          host: 'builder.example.com',
          port: 22,
          user: 'nixbuilder',
          systems: ['x86_64-linux'],
          systemDefaulted: true,
          maxJobs: 1,
          speedFactor: 1,
          supportedFeatures: [],
          mandatoryFeatures: [],
          origin: "input 'host'",
          pinInput: 'host-public-key'
        }
      ],
      privateKey: {
        text: PRIVATE_KEY_TEXT,
        type: 'ssh-ed25519',
        publicLine: clientKey.public.split(' ').slice(0, 2).join(' ')
      },
      knownHosts: [{ hosts: 'builder.example.com', key: HOST_KEY }],
      buildersUseSubstitutes: true,
      installables: [],
      args: [],
      localJobs: 0,
      requireRemote: true,
      rebuild: false,
      summary: true,
      skipUnhealthy: false,
      multiplex: true,
      strategy: 'auto',
      copyBack: true,
      evaluate: 'runner',
      fallback: 'fail',
      retries: 1,
      minFreeGib: 0,
      keyMissing: false,
      notices: []
    })
    expect(wantsBuild(settings)).toBe(false)
  })

  it('reads every builder input, trimming spaces and removing duplicate list items', () => {
    const settings = parse({
      port: ' 2222 ',
      protocol: 'ssh',
      systems: 'x86_64-linux, aarch64-linux\nx86_64-linux',
      'max-jobs': '4',
      'speed-factor': '2',
      'supported-features': 'kvm,big-parallel nixos-test',
      'mandatory-features': 'benchmark'
    })
    expect(settings.builders).toEqual([
      {
        protocol: 'ssh',
        host: 'builder.example.com',
        port: 2222,
        user: 'nixbuilder',
        systems: ['x86_64-linux', 'aarch64-linux'],
        maxJobs: 4,
        speedFactor: 2,
        supportedFeatures: ['kvm', 'big-parallel', 'nixos-test'],
        mandatoryFeatures: ['benchmark'],
        origin: "input 'host'",
        pinInput: 'host-public-key'
      }
    ])
  })

  it('pins the host key under [host]:port when the port is not 22', () => {
    expect(parse({ port: '2222' }).knownHosts).toEqual([
      { hosts: '[builder.example.com]:2222', key: HOST_KEY }
    ])
  })

  it('accepts IPv4 and IPv6 addresses', () => {
    expect(parse({ host: '192.0.2.7' }).builders[0]?.host).toBe('192.0.2.7')
    const v6 = parse({ host: '2001:db8::7', port: '2222' })
    expect(v6.builders[0]?.host).toBe('2001:db8::7')
    expect(v6.knownHosts[0]?.hosts).toBe('[2001:db8::7]:2222')
  })

  it('accepts a known_hosts line as host-public-key and keeps only its key', () => {
    const settings = parse({ 'host-public-key': `[builder.example.com]:22 ${HOST_KEY_LINE}` })
    expect(settings.knownHosts).toEqual([{ hosts: 'builder.example.com', key: HOST_KEY }])
  })

  it('accepts a private key with CRLF line ends and no final newline, normalised to LF with one', () => {
    const settings = parse({ 'ssh-private-key': clientKey.private.trim().replace(/\n/g, '\r\n') })
    expect(settings.privateKey.text).toBe(PRIVATE_KEY_TEXT)
    expect(settings.privateKey.text).not.toContain('\r')
  })

  it('reads booleans case-insensitively and falls back to their defaults when empty', () => {
    const settings = parse({
      'builders-use-substitutes': 'False',
      'require-remote': ' FALSE ',
      rebuild: 'TRUE',
      summary: 'false'
    })
    expect([
      settings.buildersUseSubstitutes,
      settings.requireRemote,
      settings.rebuild,
      settings.summary
    ]).toEqual([false, false, true, false])
  })

  it('reads local-jobs, 0 included', () => {
    expect(parse({ 'local-jobs': '0' }).localJobs).toBe(0)
    expect(parse({ 'local-jobs': '3' }).localJobs).toBe(3)
  })

  it('reads min-free-gib, off (0) when unset', () => {
    expect(parse({}).minFreeGib).toBe(0)
    expect(parse({ 'min-free-gib': ' 20 ' }).minFreeGib).toBe(20)
  })

  it('reads one installable per line, skipping blank and # lines', () => {
    const settings = parse({
      installables: 'nixpkgs#hello\r\n\n  .#packages.x86_64-linux.default  \n# later\n'
    })
    expect(settings.installables).toEqual(['nixpkgs#hello', '.#packages.x86_64-linux.default'])
    expect(wantsBuild(settings)).toBe(true)
  })

  it('splits args like a shell, keeping quoted words whole', () => {
    const settings = parse({
      args: `--impure --expr 'with import <nixpkgs> {}; hello' -L "--option" cores 2`
    })
    expect(settings.args).toEqual([
      '--impure',
      '--expr',
      'with import <nixpkgs> {}; hello',
      '-L',
      '--option',
      'cores',
      '2'
    ])
    expect(wantsBuild(settings)).toBe(true)
  })
})

describe('parseSettings with builders lines', () => {
  const ONLY_BUILDERS: Inputs = { 'ssh-private-key': clientKey.private }

  it('reads every column, with the port from the URI pinned through known-hosts', () => {
    const settings = parse(
      {
        builders:
          'ssh-ng://nix@b1.example.com:2222 aarch64-linux,armv7l-linux - 4 2 kvm,big-parallel benchmark',
        'known-hosts': `[b1.example.com]:2222 ${HOST_KEY_LINE}`
      },
      ONLY_BUILDERS
    )
    expect(settings.builders).toEqual([
      {
        protocol: 'ssh-ng',
        user: 'nix',
        host: 'b1.example.com',
        port: 2222,
        systems: ['aarch64-linux', 'armv7l-linux'],
        maxJobs: 4,
        speedFactor: 2,
        supportedFeatures: ['kvm', 'big-parallel'],
        mandatoryFeatures: ['benchmark'],
        origin: "input 'builders' line 1",
        pinInput: 'known-hosts'
      }
    ])
    expect(settings.knownHosts).toEqual([{ hosts: '[b1.example.com]:2222', key: HOST_KEY }])
  })

  it('reads a bracketed IPv6 address with a port', () => {
    const settings = parse(
      { builders: 'ssh://root@[::1]:2222', 'known-hosts': `[::1]:2222 ${HOST_KEY_LINE}` },
      ONLY_BUILDERS
    )
    expect(settings.builders[0]).toMatchObject({ protocol: 'ssh', user: 'root', host: '::1', port: 2222 })
  })

  it('uses the defaults for - columns and for missing columns', () => {
    const knownHosts = `b.example.com ${HOST_KEY_LINE}`
    const expected = {
      protocol: 'ssh-ng',
      user: 'nix',
      host: 'b.example.com',
      port: 22,
      systems: ['x86_64-linux'],
      systemDefaulted: true,
      maxJobs: 1,
      speedFactor: 1,
      supportedFeatures: [],
      mandatoryFeatures: [],
      origin: "input 'builders' line 1",
      pinInput: 'known-hosts'
    }
    for (const line of ['ssh-ng://nix@b.example.com - - - - - - -', 'ssh-ng://nix@b.example.com']) {
      expect(parse({ builders: line, 'known-hosts': knownHosts }, ONLY_BUILDERS).builders).toEqual([expected])
    }
  })

  it('counts lines, skipping blank and # lines, and accepts CRLF line ends', () => {
    const settings = parse(
      {
        builders:
          '# fleet\r\n\r\nssh-ng://nix@b1.example.com\r\nssh-ng://nix@b2.example.com x86_64-linux - 2\r\n',
        'known-hosts': `# pinned\r\n*.example.com ${HOST_KEY_LINE}\r\n`
      },
      ONLY_BUILDERS
    )
    expect(settings.builders.map(builder => [builder.host, builder.maxJobs, builder.origin])).toEqual([
      ['b1.example.com', 1, "input 'builders' line 3"],
      ['b2.example.com', 2, "input 'builders' line 4"]
    ])
  })

  it('adds the builders after the one from host', () => {
    const settings = parse({
      builders: 'ssh-ng://nix@b2.example.com',
      'known-hosts': `b2.example.com ${HOST_KEY_LINE}`
    })
    expect(settings.builders.map(builder => builder.host)).toEqual(['builder.example.com', 'b2.example.com'])
    expect(settings.knownHosts.map(line => line.hosts)).toEqual(['builder.example.com', 'b2.example.com'])
  })

  it('matches a hashed known_hosts entry (ssh-keygen -H) for [host]:port', () => {
    const hashed = hashedHost('[b1.example.com]:2222')
    const settings = parse(
      { builders: 'ssh-ng://nix@b1.example.com:2222', 'known-hosts': `${hashed} ${HOST_KEY_LINE}` },
      ONLY_BUILDERS
    )
    expect(settings.knownHosts).toEqual([{ hosts: hashed, key: HOST_KEY }])
  })

  // Whether a builder is pinned is the preflight's question (it prints the key to pin); settings only parse.
  it.each([
    [
      'a hashed entry made for another port',
      'ssh-ng://nix@b1.example.com:2222',
      `${hashedHost('b1.example.com')} ${HOST_KEY_LINE}`
    ],
    ['a line for another port', 'ssh-ng://nix@b1.example.com:2222', `b1.example.com ${HOST_KEY_LINE}`],
    ['a @revoked line', 'ssh-ng://nix@b1.example.com', `@revoked b1.example.com ${HOST_KEY_LINE}`]
  ])(
    'accepts a builder whose only known-hosts line is %s, leaving it unpinned',
    (_, builders, knownHosts) => {
      const settings = parse({ builders, 'known-hosts': knownHosts }, ONLY_BUILDERS)
      const builder = settings.builders[0]
      expect(builder?.pinInput).toBe('known-hosts')
      expect(
        settings.knownHosts.some(line => knownHostsLineMatches(line, builder?.host ?? '', builder?.port ?? 0))
      ).toBe(false)
    }
  )

  it('accepts a missing host-public-key, pinning nothing (the preflight prints the key to pin)', () => {
    const settings = parse({ 'host-public-key': '' })
    expect(settings.knownHosts).toEqual([])
    expect(settings.builders[0]?.pinInput).toBe('host-public-key')
  })
})

interface Refusal {
  what: string
  inputs: Inputs
  base?: Inputs
  input: `${Input}`
  detail: string | RegExp
}

const KNOWN_B1 = `b1.example.com ${HOST_KEY_LINE}`

const REFUSALS: Refusal[] = [
  // host and its companions
  {
    what: 'host with a space',
    inputs: { host: 'b1 example.com' },
    input: 'host',
    detail: '"b1 example.com" is not a DNS name or an IP address'
  },
  {
    what: 'host with #',
    inputs: { host: 'b1#x' },
    input: 'host',
    detail: '"b1#x" is not a DNS name or an IP address'
  },
  {
    what: 'host with ;',
    inputs: { host: 'b1;builders=x' },
    input: 'host',
    detail: '"b1;builders=x" is not a DNS name or an IP address'
  },
  {
    what: 'host that is an ssh option',
    inputs: { host: '-oProxyCommand=id' },
    input: 'host',
    detail: /is not a DNS name or an IP address$/
  },
  {
    what: 'host with a newline',
    inputs: { host: 'b1\nb2' },
    input: 'host',
    detail: '"b1\\x0ab2" is not a DNS name or an IP address'
  },
  {
    what: 'bracketed IPv6 host',
    inputs: { host: '[::1]' },
    input: 'host',
    detail: /"\[::1\]" is not a DNS name/
  },
  {
    what: 'port 99999',
    inputs: { port: '99999' },
    input: 'port',
    detail: '"99999" is not a TCP port (1-65535)'
  },
  { what: 'port 0', inputs: { port: '0' }, input: 'port', detail: '"0" is not a TCP port (1-65535)' },
  {
    what: 'port with letters',
    inputs: { port: '22a' },
    input: 'port',
    detail: '"22a" is not a TCP port (1-65535)'
  },
  {
    what: 'unknown protocol',
    inputs: { protocol: 'https' },
    input: 'protocol',
    detail: '"https" is not a protocol; use ssh-ng (recommended) or ssh'
  },
  {
    what: 'missing user',
    inputs: { user: '' },
    input: 'user',
    detail: 'the SSH user on the builder is required'
  },
  {
    what: 'user with a newline',
    inputs: { user: 'nix\nbuilder' },
    input: 'user',
    detail: /^"nix\\x0abuilder" is not a valid user name/
  },
  {
    what: 'user that is an ssh option',
    inputs: { user: '-oProxyCommand=id' },
    input: 'user',
    detail: /is not a valid user name/
  },
  {
    what: 'user with @',
    inputs: { user: 'nix@evil' },
    input: 'user',
    detail: /^"nix@evil" is not a valid user name/
  },
  {
    what: 'systems smuggling a builders line',
    inputs: { systems: 'x86_64-linux\nbuilders = ssh://evil' },
    input: 'systems',
    detail: '"builders" is not a Nix system name like x86_64-linux'
  },
  {
    what: 'systems with ;',
    inputs: { systems: 'x86_64-linux;ssh://evil' },
    input: 'systems',
    detail: /^"x86_64-linux;ssh:\/\/evil" is not a Nix system name/
  },
  {
    what: 'supported-features with #',
    inputs: { 'supported-features': 'kvm,#big' },
    input: 'supported-features',
    detail: '"#big" is not a feature name'
  },
  {
    what: 'mandatory-features with ;',
    inputs: { 'mandatory-features': 'a;b' },
    input: 'mandatory-features',
    detail: '"a;b" is not a feature name'
  },
  {
    what: 'max-jobs 0',
    inputs: { 'max-jobs': '0' },
    input: 'max-jobs',
    detail: '"0" is not a whole number of at least 1'
  },
  {
    what: 'max-jobs negative',
    inputs: { 'max-jobs': '-1' },
    input: 'max-jobs',
    detail: '"-1" is not a whole number of at least 1'
  },
  {
    what: 'speed-factor 0',
    inputs: { 'speed-factor': '0' },
    input: 'speed-factor',
    detail: '"0" is not a whole number of at least 1'
  },
  {
    what: 'min-free-gib negative',
    inputs: { 'min-free-gib': '-1' },
    input: 'min-free-gib',
    detail: '"-1" is not a whole number of at least 0'
  },
  {
    what: 'min-free-gib a fraction',
    inputs: { 'min-free-gib': '2.5' },
    input: 'min-free-gib',
    detail: '"2.5" is not a whole number of at least 0'
  },
  {
    what: 'local-jobs not a number',
    inputs: { 'local-jobs': 'auto' },
    input: 'local-jobs',
    detail: '"auto" is not a whole number of at least 0'
  },
  {
    what: 'two host-public-key lines',
    inputs: { 'host-public-key': `${HOST_KEY_LINE}\n${HOST_KEY_LINE}` },
    input: 'host-public-key',
    detail: 'must be one line: the builder\'s host key, "ssh-ed25519 AAAA… comment"'
  },
  {
    what: 'host-public-key of an unknown type',
    inputs: { 'host-public-key': `ssh-foo ${HOST_KEY_BLOB}` },
    input: 'host-public-key',
    detail: /^"ssh-foo" is not an SSH host key type .*; expected the builder's host key line/
  },
  {
    what: 'host-public-key with a broken blob',
    inputs: { 'host-public-key': `ssh-ed25519 ${HOST_KEY_BLOB.slice(0, 30)}` },
    input: 'host-public-key',
    detail: /^the base64 part is not a valid ssh-ed25519 key; expected/
  },
  {
    what: 'user without host',
    inputs: { host: '' },
    input: 'user',
    detail: "is set but 'host' is not; set 'host' to the builder's address"
  },
  {
    what: 'host-public-key without host',
    inputs: { host: '', user: '' },
    input: 'host-public-key',
    detail: "is set but 'host' is not; set 'host' to the builder's address"
  },
  {
    what: 'no builder at all',
    inputs: { host: '', user: '', 'host-public-key': '' },
    input: 'host',
    detail:
      /^no builder is configured\. Set 'host', 'user', 'ssh-private-key' and 'host-public-key', or list builders in 'builders'$/
  },
  // the key
  {
    what: 'missing ssh-private-key',
    inputs: { 'ssh-private-key': ' \n' },
    input: 'ssh-private-key',
    detail: /^is required: give the private key \(no passphrase\)/
  },
  {
    what: 'passphrase-protected ssh-private-key',
    inputs: { 'ssh-private-key': encryptedKey.private },
    input: 'ssh-private-key',
    detail: /^is protected by a passphrase/
  },
  {
    what: 'public key as ssh-private-key',
    inputs: { 'ssh-private-key': clientKey.public },
    input: 'ssh-private-key',
    detail: /^is not a private key/
  },
  {
    what: 'ssh-private-key cut short',
    inputs: { 'ssh-private-key': clientKey.private.split('\n').slice(0, 3).join('\n') },
    input: 'ssh-private-key',
    detail: /^is cut short/
  },
  // builders and known-hosts
  {
    what: 'builders line with 9 columns',
    inputs: {
      builders: 'ssh-ng://nix@b1.example.com x86_64-linux - 1 1 - - - extra',
      'known-hosts': KNOWN_B1
    },
    input: 'builders',
    detail: /^line 1 has 9 columns; expected at most 8: "URI systems ssh-key max-jobs /
  },
  {
    what: 'builders URI with another scheme',
    inputs: { builders: 'https://b1.example.com' },
    input: 'builders',
    detail:
      'line 1, column 1 (URI): "https://" is not an SSH store; write the builder as ssh-ng://user@host or ssh://user@host'
  },
  {
    what: 'builders URI with an empty user',
    inputs: { builders: 'ssh-ng://@b1.example.com' },
    input: 'builders',
    detail: 'line 1, column 1 (URI): the SSH user on the builder is required'
  },
  {
    what: 'builders URI with port 99999',
    inputs: { builders: 'ssh-ng://nix@b1.example.com:99999' },
    input: 'builders',
    detail: 'line 1, column 1 (URI): "99999" is not a TCP port (1-65535)'
  },
  {
    what: 'builders URI with an empty port',
    inputs: { builders: 'ssh-ng://nix@b1.example.com:' },
    input: 'builders',
    detail: 'line 1, column 1 (URI): "" is not a TCP port (1-65535)'
  },
  {
    what: 'builders URI whose user is an ssh option',
    inputs: { builders: 'ssh-ng://-oProxyCommand=id@b1.example.com' },
    input: 'builders',
    detail: /^line 1, column 1 \(URI\): "-oProxyCommand=id" is not a valid user name/
  },
  {
    what: 'builders URI whose host is an ssh option',
    inputs: { builders: 'ssh-ng://nix@-oProxyCommand=id' },
    input: 'builders',
    detail: 'line 1, column 1 (URI): "-oProxyCommand=id" is not a DNS name or an IP address'
  },
  {
    what: 'bare builders host that is an ssh option',
    inputs: { builders: '-oProxyCommand=id' },
    input: 'builders',
    detail: 'line 1, column 1 (URI): "-oProxyCommand=id" is not a DNS name or an IP address'
  },
  {
    what: 'builders URI with a path',
    inputs: { builders: 'ssh://nix@b1.example.com/store' },
    input: 'builders',
    detail: 'line 1, column 1 (URI): "b1.example.com/store" is not a DNS name or an IP address'
  },
  {
    what: 'builders URI with an unknown parameter',
    inputs: { builders: 'ssh-ng://nix@b1.example.com?compress=true' },
    input: 'builders',
    detail: /^line 1, column 1 \(URI\): the URI parameter "compress" is not supported here; remove it/
  },
  {
    what: 'builders remote-program that is an option',
    inputs: { builders: 'ssh-ng://nix@b1.example.com?remote-program=-oProxyCommand%3Did' },
    input: 'builders',
    detail: /^line 1, column 1 \(URI\): remote-program "-oProxyCommand=id" is not a command name or path/
  },
  {
    what: 'builders remote-program with a space',
    inputs: { builders: 'ssh-ng://nix@b1.example.com?remote-program=nix%20daemon' },
    input: 'builders',
    detail: /^line 1, column 1 \(URI\): remote-program "nix daemon" is not a command name or path/
  },
  {
    what: 'builders URI parameter with an encoded newline',
    inputs: { builders: 'ssh-ng://nix@b1.example.com?ssh-key=%0A' },
    input: 'builders',
    detail: /^line 1, column 1 \(URI\): the value of "ssh-key" is not a valid percent-encoded value/
  },
  {
    what: 'builders line that includes a file',
    inputs: { builders: '@/etc/nix/machines' },
    input: 'builders',
    detail: 'line 1: "@/etc/nix/machines" includes a file from the runner; paste that file\'s lines instead'
  },
  {
    what: 'builders systems with a quote',
    inputs: { builders: "ssh-ng://nix@b1.example.com x86_64-linux'x" },
    input: 'builders',
    detail: 'line 1, column 2 (systems): "x86_64-linux\'x" is not a Nix system'
  },
  {
    what: 'builders max-jobs 0',
    inputs: { builders: 'ssh-ng://nix@b1.example.com - - 0' },
    input: 'builders',
    detail: 'line 1, column 4 (max-jobs): "0" is not a whole number of at least 1'
  },
  {
    what: 'builders line in the earlier six-column form',
    inputs: { builders: 'ssh-ng://nix@b1.example.com x86_64-linux 4 1 kvm -' },
    input: 'builders',
    detail:
      'line 1, column 3 (ssh-key): "4" is not a key path; columns follow /etc/nix/machines, with the SSH key path ' +
      'third: for max-jobs 4, write "- 4" after the systems'
  },
  {
    what: 'builders speed-factor not a number',
    inputs: { builders: 'ssh-ng://nix@b1.example.com - - - fast' },
    input: 'builders',
    detail: 'line 1, column 5 (speed-factor): "fast" is not a whole number of at least 1'
  },
  {
    what: 'builders feature with !',
    inputs: { builders: 'ssh-ng://nix@b1.example.com - - - - kvm,!x' },
    input: 'builders',
    detail: 'line 1, column 6 (supported-features): "!x" is not a feature'
  },
  {
    what: 'builders mandatory feature with a quote',
    inputs: { builders: "ssh-ng://nix@b1.example.com - - - - - a'b" },
    input: 'builders',
    detail: 'line 1, column 7 (mandatory-features): "a\'b" is not a feature'
  },
  {
    what: 'builders error in the second entry of a line',
    inputs: { builders: 'ssh://a.example.com; ssh://b.example.com - - 0' },
    input: 'builders',
    detail: 'line 1, entry 2, column 4 (max-jobs): "0" is not a whole number of at least 1'
  },
  {
    what: 'builders line with a control character',
    inputs: { builders: 'ssh-ng://nix@b1.example.com\u001b[2J' },
    input: 'builders',
    detail: 'line 1 contains a control character'
  },
  {
    what: 'known-hosts line with a control character',
    inputs: { 'known-hosts': `b1.example.com ${HOST_KEY_BLOB}\u0007` },
    input: 'known-hosts',
    detail: 'line 1 contains a control character'
  },
  {
    what: 'known-hosts line with two fields',
    inputs: { 'known-hosts': `# c\nssh-ed25519 ${HOST_KEY_BLOB}` },
    input: 'known-hosts',
    detail: /^line 2: expected "host key-type base64-key"/
  },
  {
    what: 'known-hosts host with ;',
    inputs: { 'known-hosts': `b1;x ${HOST_KEY_LINE}` },
    input: 'known-hosts',
    detail: 'line 1: "b1;x" is not a known_hosts host pattern'
  },
  // what to build
  {
    what: 'installable that is an option',
    inputs: { installables: 'nixpkgs#hello\n--impure' },
    input: 'installables',
    detail: `line 2 "--impure" is an option; put options in 'args'`
  },
  {
    what: 'installable with a space',
    inputs: { installables: 'nixpkgs#hello nixpkgs#jq' },
    input: 'installables',
    detail: 'line 1 must be one installable per line, without spaces'
  },
  {
    what: 'args with an unclosed quote',
    inputs: { args: `--expr 'hello` },
    input: 'args',
    detail: 'cannot be split into words: a single quote is not closed'
  },
  // booleans
  {
    what: 'builders-use-substitutes yes',
    inputs: { 'builders-use-substitutes': 'yes' },
    input: 'builders-use-substitutes',
    detail: '"yes" is not true or false'
  },
  {
    what: 'require-remote 1',
    inputs: { 'require-remote': '1' },
    input: 'require-remote',
    detail: '"1" is not true or false'
  },
  { what: 'rebuild on', inputs: { rebuild: 'on' }, input: 'rebuild', detail: '"on" is not true or false' },
  { what: 'summary no', inputs: { summary: 'no' }, input: 'summary', detail: '"no" is not true or false' }
]

describe('parseSettings refusals', () => {
  it.each(REFUSALS)('refuses $what, naming $input', ({ inputs, base, input, detail }) => {
    const error = refusal(inputs, base)
    expect(error.input).toBe(input)
    expect(error.message.startsWith(`Input '${input}': `)).toBe(true)
    const rest = error.message.slice(`Input '${input}': `.length)
    if (typeof detail === 'string') expect(rest).toBe(detail)
    else expect(rest).toMatch(detail)
  })

  it('never puts the private key, or a control character, in any refusal', () => {
    for (const { inputs, base } of REFUSALS) {
      const message = refusal(inputs, base).message
      expectNoSecret(message)
      expect(message).not.toMatch(CONTROL)
    }
  })

  it.each([
    Input.Host,
    Input.User,
    Input.Port,
    Input.Protocol,
    Input.Systems,
    Input.MaxJobs,
    Input.HostPublicKey,
    Input.KnownHosts,
    Input.Builders,
    Input.Installables,
    Input.BuildersUseSubstitutes,
    Input.SupportedFeatures,
    Input.MandatoryFeatures
  ])('refuses the private key pasted into %s without quoting it', input => {
    const error = refusal({ [input]: clientKey.private })
    expect(error.input).toBe(input)
    expectNoSecret(error.message)
  })
})

describe('givenBuilders', () => {
  const request = requestWith({
    host: 'b1.example.com',
    user: 'nix',
    systems: ['x86_64-linux', 'x86_64-linux', 'i686-linux'],
    maxJobs: 4,
    supportedFeatures: ['kvm'],
    origin: 'host'
  })

  it('returns every builder as given (systems once each) when nothing is auto', () => {
    expect(givenBuilders([request, { ...request, host: 'b2.example.com' }])).toEqual([
      { ...request, systems: ['x86_64-linux', 'i686-linux'] },
      { ...request, host: 'b2.example.com', systems: ['x86_64-linux', 'i686-linux'] }
    ])
  })

  it.each(['systems', 'maxJobs', 'supportedFeatures'] as const)(
    'returns nothing when one builder leaves %s to the preflight',
    field => {
      expect(givenBuilders([request, { ...request, [field]: 'auto' }])).toBeUndefined()
    }
  )
})

describe('withRunnerSystem: the system the runner probe reports, after parsing with a guess', () => {
  const inputs: Inputs = {
    ...MINIMAL,
    builders:
      'ssh-ng://nixbuilder@second.example.com - - 2\n' +
      'ssh-ng://nixbuilder@third.example.com aarch64-linux - 2\n' +
      'ssh-ng://nixbuilder@fourth.example.com'
  }

  it('gives it to every builder that took the default, as parsing with it would', () => {
    const guessed = parseSettings(reader(inputs), { system: 'x86_64-darwin' })
    const probed = parseSettings(reader(inputs), { system: 'x86_64-linux' })
    const corrected = withRunnerSystem(guessed, 'x86_64-linux')
    expect(corrected.builders.map(builder => builder.systems)).toEqual([
      ['x86_64-linux'],
      ['x86_64-linux'],
      ['aarch64-linux'],
      ['x86_64-linux']
    ])
    expect(corrected).toEqual(probed)
  })

  it('leaves a builder whose systems were given', () => {
    const given = parseSettings(reader({ ...MINIMAL, systems: 'i686-linux' }), { system: 'x86_64-darwin' })
    expect(withRunnerSystem(given, 'x86_64-linux').builders[0]?.systems).toEqual(['i686-linux'])
  })
})
