import { describe, expect, it } from 'vitest'
import {
  compareVersions,
  CONFIG_SHOW_SHELL,
  configShowArgs,
  type NixRelease,
  parseConfigShow,
  parseNixVersion,
  parseStoreInfo,
  settingList,
  storeInfoArgs
} from '../../../src/nix/nix-cli.js'

const nix = (version: string): NixRelease => ({ implementation: 'nix', version })
const lix = (version: string): NixRelease => ({ implementation: 'lix', version })

describe('parseNixVersion', () => {
  it('reads Nix, as Debian and the installers print it', () => {
    expect(parseNixVersion('nix (Nix) 2.8.0\n')).toEqual(nix('2.8.0'))
    expect(parseNixVersion('nix (Nix) 2.34.8')).toEqual(nix('2.34.8'))
    expect(parseNixVersion('nix-daemon (Nix) 2.26.3')).toEqual(nix('2.26.3'))
  })

  it("takes Determinate Nix's Nix version as the version, and keeps its own apart", () => {
    expect(parseNixVersion('nix (Determinate Nix 3.19.0) 2.34.6')).toEqual({
      ...nix('2.34.6'),
      determinate: '3.19.0'
    })
    expect(parseNixVersion('nix-daemon (Determinate Nix 3.6.2) 2.29.0')).toEqual({
      ...nix('2.29.0'),
      determinate: '3.6.2'
    })
  })

  it('knows Lix, with its betas and the extra lines of 2.92+', () => {
    expect(parseNixVersion('nix (Lix, like Nix) 2.93.0')).toEqual(lix('2.93.0'))
    expect(parseNixVersion('nix (Lix, like Nix) 2.90-beta.1-lixpre20240506-b6799ab')).toEqual(lix('2.90'))
    expect(
      parseNixVersion(
        'nix (Lix, like Nix) 2.92.0-dev-pre20250117-0d14c2b\nSystem type: x86_64-linux\nFeatures: gc, signed-caches\n'
      )
    ).toEqual(lix('2.92.0'))
  })

  it('returns an empty version for a line without one', () => {
    expect(parseNixVersion('')).toEqual(nix(''))
    expect(parseNixVersion('sh: 1: nix-daemon: not found')).toEqual(nix(''))
  })
})

describe('compareVersions', () => {
  it('compares numerically, part by part', () => {
    expect(compareVersions('2.8.0', '2.19')).toBe(-1)
    expect(compareVersions('2.19.0', '2.19')).toBe(0)
    expect(compareVersions('2.20', '2.19.9')).toBe(1)
    expect(compareVersions('unknown', '2.19')).toBe(-1)
  })
})

describe('storeInfoArgs', () => {
  it('asks `store info --json` from Nix 2.19, where `store ping` became a deprecated alias', () => {
    expect(storeInfoArgs(nix('2.19.0'))).toEqual(['store', 'info', '--json'])
    expect(storeInfoArgs(nix('2.26.3'))).toEqual(['store', 'info', '--json'])
    expect(storeInfoArgs(nix('2.34.8'))).toEqual(['store', 'info', '--json'])
  })

  it('asks `store ping` on older Nix, on every Lix, and when the version is unknown', () => {
    expect(storeInfoArgs(nix('2.8.0'))).toEqual(['store', 'ping'])
    expect(storeInfoArgs(nix('2.18.9'))).toEqual(['store', 'ping'])
    expect(storeInfoArgs(lix('2.93.0'))).toEqual(['store', 'ping'])
    expect(storeInfoArgs(nix(''))).toEqual(['store', 'ping'])
  })
})

describe('configShowArgs', () => {
  it('asks `config show` from Nix 2.20 and on every Lix', () => {
    expect(configShowArgs(nix('2.20.0'))).toEqual(['config', 'show', '--json'])
    expect(configShowArgs(nix('2.34.8'))).toEqual(['config', 'show', '--json'])
    expect(configShowArgs(lix('2.90'))).toEqual(['config', 'show', '--json'])
  })

  it('asks `show-config` up to Nix 2.19 and when the version is unknown', () => {
    expect(configShowArgs(nix('2.8.0'))).toEqual(['show-config', '--json'])
    expect(configShowArgs(nix('2.19.3'))).toEqual(['show-config', '--json'])
    expect(configShowArgs(nix(''))).toEqual(['show-config', '--json'])
  })

  it('has a shell form that tries `config show` first, each with the feature it needs', () => {
    const [first = '', second = ''] = CONFIG_SHOW_SHELL.split(' || ')
    expect(first).toContain('--extra-experimental-features nix-command config show --json')
    expect(second).toContain('--extra-experimental-features nix-command show-config --json')
  })
})

describe('parseStoreInfo', () => {
  it('reads `nix store info --json` of Nix 2.34 (trusted as a boolean)', () => {
    expect(parseStoreInfo('{"trusted":true,"url":"daemon","version":"2.34.8"}\n', '')).toEqual({
      url: 'daemon',
      version: '2.34.8',
      trusted: true
    })
  })

  it('reads `nix store info --json` of Nix 2.26 (trusted as a number)', () => {
    expect(parseStoreInfo('{"trusted":1,"url":"daemon","version":"2.26.3"}\n', '')).toEqual({
      url: 'daemon',
      version: '2.26.3',
      trusted: true
    })
    expect(parseStoreInfo('{"trusted":0,"url":"ssh-ng://nixbuilder@labA","version":"2.26.3"}', '')).toEqual({
      url: 'ssh-ng://nixbuilder@labA',
      version: '2.26.3',
      trusted: false
    })
  })

  it('reads the JSON a failed connection leaves: the URL only', () => {
    expect(
      parseStoreInfo('{"url":"ssh-ng://nixbuilder@labA"}\n', 'error: failed to start SSH connection')
    ).toEqual({
      url: 'ssh-ng://nixbuilder@labA'
    })
  })

  it('reads `nix store ping` text of Nix 2.8 (no Trusted line) from stderr', () => {
    expect(parseStoreInfo('', 'Store URL: daemon\nVersion: 2.8.0\n')).toEqual({
      url: 'daemon',
      version: '2.8.0'
    })
    expect(parseStoreInfo('', 'Store URL: local\n')).toEqual({ url: 'local' })
  })

  it('reads `nix store ping` text of Nix 2.15+ and Lix, with Trusted', () => {
    expect(parseStoreInfo('', 'Store URL: ssh-ng://nixbuilder@labA\nVersion: 2.93.0\nTrusted: 0\n')).toEqual({
      url: 'ssh-ng://nixbuilder@labA',
      version: '2.93.0',
      trusted: false
    })
  })

  it('finds nothing in output that is neither form', () => {
    expect(parseStoreInfo('', "error: 'info' is not a recognised command")).toEqual({ url: '' })
    expect(parseStoreInfo('{not json', '')).toEqual({ url: '' })
  })
})

describe('parseConfigShow', () => {
  it('reads the {"name": {"value": …}} form of Nix 2.8 to 2.34', () => {
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
      system: { value: 'x86_64-linux', experimentalFeature: null }
    })
    expect(parseConfigShow(json)).toEqual({
      builders: '@/etc/nix/machines',
      'builders-use-substitutes': true,
      'trusted-users': ['root', 'runner'],
      'max-jobs': 1,
      system: 'x86_64-linux'
    })
  })

  it('reads the plain {"name": value} form', () => {
    expect(parseConfigShow('{"builders":"","trusted-users":"root runner","substitute":false}')).toEqual({
      builders: '',
      'trusted-users': 'root runner',
      substitute: false
    })
  })

  it('keeps an object value that is not a {value} wrapper, and a null', () => {
    expect(parseConfigShow('{"a":{"x":1},"b":null}')).toEqual({ a: { x: 1 }, b: null })
  })

  it('returns nothing for JSON that is not an object', () => {
    expect(parseConfigShow('null')).toEqual({})
    expect(parseConfigShow('"x"')).toEqual({})
  })

  it('throws on text that is not JSON', () => {
    expect(() => parseConfigShow('warning: unknown setting\n{}')).toThrow(SyntaxError)
  })
})

describe('settingList', () => {
  it('reads an array or a space-separated string', () => {
    expect(settingList({ a: ['x', 'y'], b: 'x  y ', c: 3 }, 'a')).toEqual(['x', 'y'])
    expect(settingList({ a: ['x', 'y'], b: 'x  y ', c: 3 }, 'b')).toEqual(['x', 'y'])
    expect(settingList({ a: ['x', 'y'], b: 'x  y ', c: 3 }, 'c')).toEqual([])
  })
})
