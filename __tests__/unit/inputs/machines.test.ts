import ssh2 from 'ssh2'
import { describe, expect, it } from 'vitest'
import { Input } from '../../../src/inputs/constants.js'
import { InputError } from '../../../src/inputs/errors.js'
import { knownHostsLineMatches } from '../../../src/inputs/keys.js'
import { parseMachines } from '../../../src/inputs/machines.js'
import { type InputReader, parseSettings, type Settings } from '../../../src/inputs/settings.js'
import { readableKeyPair } from '../support/ssh-keys.js'

type Inputs = Partial<Record<`${Input}`, string>>

const clientKey = readableKeyPair(() => ssh2.utils.generateKeyPairSync('ed25519', { comment: 'ci@example' }))
// A host key line as a builder's /etc/ssh/ssh_host_ed25519_key.pub holds it.
const macKey = readableKeyPair(() => ssh2.utils.generateKeyPairSync('ed25519', { comment: 'root@mac' }))
const MAC_KEY_LINE = macKey.public.trim()
const [MAC_KEY_TYPE = '', MAC_KEY_BLOB = ''] = MAC_KEY_LINE.split(' ')
// How Nix's manual builds column 8: `base64 -w0` of the .pub file, its final newline included.
const MAC_KEY_BASE64 = Buffer.from(`${MAC_KEY_LINE}\n`).toString('base64')

// nix-darwin's linux-builder, as NixOS's nix.buildMachines writes it into /etc/nix/machines.
const LINUX_BUILDER =
  'ssh-ng://builder@linux-builder aarch64-linux /etc/nix/builder_ed25519 4 1 kvm,benchmark,big-parallel - ' +
  'c3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSUpCV2N4Yi9CbGFxdDFhdU90RStGOFFVV3JVb3RpQzVxQkorVXVFV2RWQ2Igcm9vdEBuaXhvcwo='
const LINUX_BUILDER_KEY = {
  type: 'ssh-ed25519',
  blob: 'AAAAC3NzaC1lZDI1NTE5AAAAIJBWcxb/Blaqt1auOtE+F8QUWrUotiC5qBJ+UuEWdVCb'
}

function settingsFor(inputs: Inputs): Settings {
  const values: Inputs = { 'ssh-private-key': clientKey.private, ...inputs }
  const read: InputReader = name => values[name] ?? ''
  return parseSettings(read, { system: 'x86_64-linux' })
}

function refusal(builders: string): InputError {
  try {
    settingsFor({ builders })
  } catch (error) {
    if (error instanceof InputError) return error
    throw error
  }
  throw new Error(`accepted ${builders}`)
}

describe("builders lines from Nix's manual", () => {
  it('reads a line with - for the key path', () => {
    const { machines, notices } = parseMachines(
      'ssh://mac x86_64-darwin - 1 1 benchmark big-parallel',
      'x86_64-linux'
    )
    expect(machines).toEqual([
      {
        protocol: 'ssh',
        user: 'root',
        host: 'mac',
        port: 22,
        systems: ['x86_64-darwin'],
        maxJobs: 1,
        speedFactor: 1,
        supportedFeatures: ['benchmark'],
        mandatoryFeatures: ['big-parallel'],
        origin: "input 'builders' line 1"
      }
    ])
    expect(notices).toEqual([
      "Input 'builders' line 1: the URI names no user, so the action connects to mac as root, as the nix-daemon's " +
        'ssh would; write user@mac to choose another.'
    ])
  })

  it('reads all eight columns, the host key pinning the builder and the key path said to be ignored', () => {
    const line = `ssh://mac x86_64-darwin,aarch64-darwin /home/user/.ssh/id_mac 8 2 kvm,big-parallel - ${MAC_KEY_BASE64}`
    const settings = settingsFor({ builders: line })
    expect(settings.builders).toEqual([
      {
        protocol: 'ssh',
        user: 'root',
        host: 'mac',
        port: 22,
        systems: ['x86_64-darwin', 'aarch64-darwin'],
        maxJobs: 8,
        speedFactor: 2,
        supportedFeatures: ['kvm', 'big-parallel'],
        mandatoryFeatures: [],
        origin: "input 'builders' line 1",
        pinInput: 'builders'
      }
    ])
    expect(settings.knownHosts).toEqual([{ hosts: 'mac', key: { type: MAC_KEY_TYPE, blob: MAC_KEY_BLOB } }])
    expect(settings.notices).toContain(
      "Input 'builders' line 1: builder root@mac:22 is reached with the action's own key from 'ssh-private-key'; " +
        'the key path "/home/user/.ssh/id_mac" in column 3 is ignored (it names a file the runner does not have).'
    )
  })

  it('reads a bare user@host with fewer columns, and several spaces between them', () => {
    const { machines } = parseMachines(
      'nix@scratchy.labs.cs.uu.nl  i686-linux  /home/nix/.ssh/id_scratchy_auto  8 1 kvm',
      'x86_64-linux'
    )
    expect(machines).toEqual([
      expect.objectContaining({
        protocol: 'ssh',
        user: 'nix',
        host: 'scratchy.labs.cs.uu.nl',
        systems: ['i686-linux'],
        maxJobs: 8,
        speedFactor: 1,
        supportedFeatures: ['kvm'],
        mandatoryFeatures: []
      })
    ])
  })

  it('splits entries on ; as well as on new lines, and drops # comments to the end of a line', () => {
    const { machines } = parseMachines(
      'ssh://a.example.com x86_64-linux; ssh-ng://nix@b.example.com aarch64-linux # the arm one\n' +
        '# ssh://commented.example.com\n;ssh://c.example.com',
      'x86_64-linux'
    )
    expect(machines.map(machine => [machine.host, machine.protocol, machine.origin])).toEqual([
      ['a.example.com', 'ssh', "input 'builders' line 1, entry 1"],
      ['b.example.com', 'ssh-ng', "input 'builders' line 1, entry 2"],
      ['c.example.com', 'ssh', "input 'builders' line 3"]
    ])
  })
})

describe('builders lines from NixOS nix.buildMachines', () => {
  it('reads the linux-builder line, pinned by its column 8', () => {
    const settings = settingsFor({ builders: LINUX_BUILDER })
    expect(settings.builders[0]).toMatchObject({
      protocol: 'ssh-ng',
      user: 'builder',
      host: 'linux-builder',
      systems: ['aarch64-linux'],
      maxJobs: 4,
      supportedFeatures: ['kvm', 'benchmark', 'big-parallel'],
      mandatoryFeatures: [],
      pinInput: 'builders'
    })
    expect(settings.knownHosts).toEqual([{ hosts: 'linux-builder', key: LINUX_BUILDER_KEY }])
    expect(settings.notices).toEqual([
      expect.stringContaining('"/etc/nix/builder_ed25519" in column 3 is ignored')
    ])
  })

  it('accepts either key for a builder pinned both by column 8 and by known-hosts', () => {
    const settings = settingsFor({
      builders: LINUX_BUILDER.replace('@linux-builder', '@linux-builder:2222'),
      'known-hosts': `[linux-builder]:2222 ${MAC_KEY_LINE}`
    })
    const builder = settings.builders[0]
    const pins = settings.knownHosts
      .filter(line => knownHostsLineMatches(line, builder?.host ?? '', builder?.port ?? 0))
      .map(line => line.key)
    expect(pins).toEqual([{ type: MAC_KEY_TYPE, blob: MAC_KEY_BLOB }, LINUX_BUILDER_KEY])
  })
})

describe('builders columns', () => {
  it.each([
    ['systems', 'ssh-ng://nix@b.example.com auto', { systems: 'auto' }],
    ['max-jobs', 'ssh-ng://nix@b.example.com - - auto', { maxJobs: 'auto' }],
    ['supported-features', 'ssh-ng://nix@b.example.com - - - - auto', { supportedFeatures: 'auto' }]
  ])('take auto for %s, for the preflight to ask the builder', (_, line, expected) => {
    expect(parseMachines(line, 'x86_64-linux').machines[0]).toMatchObject(expected)
  })

  it.each([
    ['host', 'b.example.com', { protocol: 'ssh', user: 'root', host: 'b.example.com', port: 22 }],
    ['host:port', 'b.example.com:2222', { host: 'b.example.com', port: 2222 }],
    ['user@[v6]:port', 'nix@[2001:db8::7]:2222', { user: 'nix', host: '2001:db8::7', port: 2222 }],
    ['ssh://user@v6', 'ssh://nix@2001:db8::7', { host: '2001:db8::7', port: 22 }],
    ['ssh-ng://user@host:port', 'ssh-ng://nix@b.example.com:2222', { protocol: 'ssh-ng', port: 2222 }]
  ])('read the URI form %s', (_, uri, expected) => {
    expect(parseMachines(uri, 'x86_64-linux').machines[0]).toMatchObject(expected)
  })

  it('keep a remote-program parameter and replace an ssh-key one, saying so', () => {
    const { machines, notices } = parseMachines(
      'ssh-ng://nix@b.example.com?remote-program=/nix/var/nix/profiles/default/bin/nix-daemon&ssh-key=%2Froot%2Fid',
      'x86_64-linux'
    )
    expect(machines[0]?.remoteProgram).toBe('/nix/var/nix/profiles/default/bin/nix-daemon')
    expect(notices).toEqual([
      expect.stringContaining(`the key path "/root/id" in the URI's ssh-key is ignored`)
    ])
  })

  it('say nothing about a line that names its user and leaves column 3 empty', () => {
    expect(parseMachines('ssh-ng://nix@b.example.com x86_64-linux - 2', 'x86_64-linux').notices).toEqual([])
  })
})

describe('builders column 8 refusals', () => {
  const line = (hostKey: string): string => `ssh-ng://nix@b.example.com - - - - - - ${hostKey}`
  const prefix = "Input 'builders': line 1, column 8 (host-key): "

  it.each([
    ['not base64', 'ssh-ed25519'],
    ['base64 with bits past its end', 'YR==']
  ])('refuses a value that is %s', (_, value) => {
    expect(refusal(line(value)).message).toBe(
      `${prefix}is not base64; expected the base64 of the builder's host key line (base64 -w0 ` +
        '/etc/ssh/ssh_host_ed25519_key.pub), or -'
    )
  })

  it('refuses the base64 of two lines', () => {
    const twoLines = Buffer.from(`${MAC_KEY_LINE}\n${MAC_KEY_LINE}\n`).toString('base64')
    expect(refusal(line(twoLines)).message).toMatch(
      new RegExp(`^${escape(prefix)}decodes to more than one line`)
    )
  })

  it.each([
    ['an unknown key type', `ssh-foo ${MAC_KEY_BLOB}`, /"ssh-foo" is not an SSH host key type/],
    ['a known_hosts line', `mac ${MAC_KEY_LINE}`, /"mac" is not an SSH host key type/],
    ['a blob of another type', `ssh-rsa ${MAC_KEY_BLOB}`, /the base64 part is not a valid ssh-rsa key/],
    ['a type alone', 'ssh-ed25519', /the key is not base64/]
  ])('refuses the base64 of %s', (_, decoded, reason) => {
    const message = refusal(line(Buffer.from(decoded).toString('base64'))).message
    expect(message.startsWith(`${prefix}decodes to no host key line: `)).toBe(true)
    expect(message).toMatch(reason)
  })

  it('never quotes the value, which could be a pasted secret', () => {
    const secret = Buffer.from(clientKey.private).toString('base64')
    const message = refusal(line(secret)).message
    expect(message).not.toContain(secret.slice(60, 120))
    expect(message).toContain('decodes to more than one line')
  })
})

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
