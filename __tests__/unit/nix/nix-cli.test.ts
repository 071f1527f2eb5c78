import { describe, expect, it } from 'vitest'
import {
  compareVersions,
  CONFIG_SHOW_SHELL,
  configShowArgs,
  copyLinksOutputs,
  derivationShowArgs,
  type NixRelease,
  parseConfigShow,
  parseDerivationOutputs,
  parseDerivationShow,
  parseNixVersion,
  parsePathInfo,
  parseStoreInfo,
  pathInfoJsonArgs,
  settingList,
  storeInfoArgs
} from '../../../src/nix/nix-cli.js'
import { builderNix, sshDestination } from '../../../src/nix/nix-cli.js'

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

describe('copyLinksOutputs', () => {
  it('is true from Nix 2.25 (`nix copy --out-link`, NixOS/nix#11657), and for Determinate Nix on it; never for Lix', () => {
    expect(copyLinksOutputs(nix('2.24.14'))).toBe(false)
    expect(copyLinksOutputs(nix('2.8.0'))).toBe(false)
    expect(copyLinksOutputs(nix('2.25.0'))).toBe(true)
    expect(copyLinksOutputs(nix('2.34.8'))).toBe(true)
    expect(copyLinksOutputs({ implementation: 'nix', version: '2.33.1', determinate: '3.19.0' })).toBe(true)
    expect(copyLinksOutputs(lix('2.93.3'))).toBe(false)
    expect(copyLinksOutputs(nix(''))).toBe(false)
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

describe('derivationShowArgs', () => {
  it('asks Nix before 2.15 for show-derivation, the only form it has', () => {
    expect(derivationShowArgs(parseNixVersion('nix (Nix) 2.8.0'))).toEqual(['show-derivation'])
    expect(derivationShowArgs(parseNixVersion('nix (Nix) 2.14.1'))).toEqual(['show-derivation'])
  })

  it('asks Nix from 2.15, Determinate Nix and Lix for derivation show', () => {
    for (const line of [
      'nix (Nix) 2.15.0',
      'nix (Nix) 2.26.3',
      'nix (Nix) 2.34.8',
      'nix (Determinate Nix 3.19.0) 2.34.6',
      'nix (Lix, like Nix) 2.93.0'
    ]) {
      expect(derivationShowArgs(parseNixVersion(line)), line).toEqual(['derivation', 'show'])
    }
  })

  it('falls back to show-derivation, which every Nix still takes, when the version is unknown', () => {
    expect(derivationShowArgs(nix(''))).toEqual(['show-derivation'])
  })
})

describe('pathInfoJsonArgs', () => {
  it('adds --json-format 1 from Nix 2.34 only', () => {
    expect(pathInfoJsonArgs(parseNixVersion('nix (Nix) 2.34.8'))).toEqual([
      'path-info',
      '--json',
      '--json-format',
      '1'
    ])
    expect(pathInfoJsonArgs(parseNixVersion('nix (Determinate Nix 3.19.0) 2.34.6'))).toEqual([
      'path-info',
      '--json',
      '--json-format',
      '1'
    ])
  })

  it('keeps plain --json on older Nix and on Lix, which have no --json-format', () => {
    for (const line of [
      'nix (Nix) 2.8.0',
      'nix (Nix) 2.15.0',
      'nix (Nix) 2.26.3',
      'nix (Nix) 2.33.1',
      'nix (Lix, like Nix) 2.93.0'
    ]) {
      expect(pathInfoJsonArgs(parseNixVersion(line)), line).toEqual(['path-info', '--json'])
    }
    expect(pathInfoJsonArgs(nix(''))).toEqual(['path-info', '--json'])
  })
})

describe('parseDerivationShow', () => {
  const DRV = '/nix/store/6pv7yl0hd1nmi3k9jkjcfz7vcbh9vdwb-vm-test.drv'
  const OUT = '/nix/store/kz7fzpmy1fs2j0cb0hr4zvhsv6kzqvmb-vm-test'

  it('reads the form of Nix up to 2.33: full paths as keys', () => {
    const stdout = JSON.stringify({
      [DRV]: {
        outputs: { out: { path: OUT } },
        inputSrcs: [],
        inputDrvs: {},
        system: 'x86_64-linux',
        builder: '/bin/sh',
        args: [],
        env: { name: 'vm-test', requiredSystemFeatures: 'kvm big-parallel', out: OUT }
      }
    })
    expect(parseDerivationShow(stdout)).toEqual([
      { drvPath: DRV, system: 'x86_64-linux', features: ['kvm', 'big-parallel'], outputs: [OUT] }
    ])
  })

  it('reads the form of Nix 2.34, with base names under "derivations", and puts them in the store', () => {
    const stdout = JSON.stringify({
      derivations: {
        '6pv7yl0hd1nmi3k9jkjcfz7vcbh9vdwb-vm-test.drv': {
          name: 'vm-test',
          outputs: { out: { path: 'kz7fzpmy1fs2j0cb0hr4zvhsv6kzqvmb-vm-test' } },
          inputs: { srcs: [], drvs: {} },
          system: 'aarch64-linux',
          builder: '/bin/sh',
          args: [],
          env: { name: 'vm-test', requiredSystemFeatures: 'kvm' },
          version: 4
        }
      },
      version: 4
    })
    expect(parseDerivationShow(stdout)).toEqual([
      { drvPath: DRV, system: 'aarch64-linux', features: ['kvm'], outputs: [OUT] }
    ])
  })

  it('uses the store directory it is given for base names', () => {
    const stdout = JSON.stringify({
      derivations: { 'abc-x.drv': { outputs: { out: { path: 'def-x' } }, system: 'x86_64-linux', env: {} } },
      version: 4
    })
    expect(parseDerivationShow(stdout, '/tmp/store')).toEqual([
      { drvPath: '/tmp/store/abc-x.drv', system: 'x86_64-linux', features: [], outputs: ['/tmp/store/def-x'] }
    ])
  })

  it('lists every output with a path, and none of a floating content-addressed one', () => {
    const stdout = JSON.stringify({
      '/nix/store/a-hello.drv': {
        outputs: { out: { path: '/nix/store/b-hello' }, dev: { path: '/nix/store/c-hello-dev' } },
        system: 'x86_64-linux',
        env: {}
      },
      '/nix/store/d-ca.drv': {
        outputs: { out: { hashAlgo: 'sha256', method: 'nar' } },
        system: 'x86_64-linux',
        env: {}
      },
      '/nix/store/e-ca-old.drv': { outputs: { out: { path: '' } }, system: 'x86_64-linux', env: {} }
    })
    expect(parseDerivationShow(stdout).map(drv => [drv.drvPath, drv.outputs])).toEqual([
      ['/nix/store/a-hello.drv', ['/nix/store/b-hello', '/nix/store/c-hello-dev']],
      ['/nix/store/d-ca.drv', []],
      ['/nix/store/e-ca-old.drv', []]
    ])
  })

  it('has no features when the environment names none or is missing, and an empty system when none is given', () => {
    const stdout = JSON.stringify({
      '/nix/store/a-x.drv': { outputs: {}, system: 'x86_64-linux', env: { requiredSystemFeatures: '' } },
      '/nix/store/b-y.drv': { outputs: {} }
    })
    expect(parseDerivationShow(stdout)).toEqual([
      { drvPath: '/nix/store/a-x.drv', system: 'x86_64-linux', features: [], outputs: [] },
      { drvPath: '/nix/store/b-y.drv', system: '', features: [], outputs: [] }
    ])
  })

  it('skips keys that are not derivations, and JSON that is not an object', () => {
    expect(parseDerivationShow('{"version": 4, "derivations": {"x.drv": 1, "notes": {}}}')).toEqual([])
    expect(parseDerivationShow('[]')).toEqual([])
    expect(parseDerivationShow('null')).toEqual([])
  })

  it('throws on text that is not JSON', () => {
    expect(() => parseDerivationShow('error: flake has no attribute')).toThrow(SyntaxError)
  })

  // A derivation with __structuredAttrs keeps requiredSystemFeatures out of its environment: Nix up to 2.33 prints
  // them inside env.__json (a JSON string), Nix 2.34 (derivation JSON v4) in a top-level "structuredAttrs" object.
  // Nix's own scheduler reads them there (ParsedDerivation::getRequiredSystemFeatures), so routing must too.
  it('reads the required features of a derivation with structured attributes', () => {
    const older = JSON.stringify({
      [DRV]: {
        outputs: { out: { path: OUT } },
        system: 'x86_64-linux',
        env: {
          __json: JSON.stringify({ name: 'vm-test', requiredSystemFeatures: ['kvm', 'nixos-test'] }),
          out: OUT
        }
      }
    })
    const v4 = JSON.stringify({
      derivations: {
        '6pv7yl0hd1nmi3k9jkjcfz7vcbh9vdwb-vm-test.drv': {
          outputs: { out: { path: 'kz7fzpmy1fs2j0cb0hr4zvhsv6kzqvmb-vm-test' } },
          system: 'x86_64-linux',
          env: {},
          structuredAttrs: { name: 'vm-test', requiredSystemFeatures: ['kvm', 'nixos-test'] }
        }
      },
      version: 4
    })
    expect(parseDerivationShow(older)[0]?.features).toEqual(['kvm', 'nixos-test'])
    expect(parseDerivationShow(v4)[0]?.features).toEqual(['kvm', 'nixos-test'])
  })
})

describe('parsePathInfo', () => {
  const OUT = '/nix/store/kz7fzpmy1fs2j0cb0hr4zvhsv6kzqvmb-hello'
  const DRV = '/nix/store/6pv7yl0hd1nmi3k9jkjcfz7vcbh9vdwb-hello.drv'

  it("reads Nix 2.8's list of objects with a path each", () => {
    const stdout = JSON.stringify([
      {
        path: OUT,
        narHash: 'sha256:0000000000000000000000000000000000000000000000000000',
        narSize: 176,
        references: [],
        deriver: DRV,
        registrationTime: 1,
        ultimate: true
      }
    ])
    expect(parsePathInfo(stdout)).toEqual([
      { path: OUT, narSize: 176, deriver: DRV, registrationTime: 1, ultimate: true }
    ])
  })

  it('reads the object keyed by path of later Nix, where a path not in the store is null', () => {
    const stdout = JSON.stringify({
      [OUT]: { narSize: 2048, deriver: DRV, registrationTime: 1760000000, ultimate: true },
      '/nix/store/00000000000000000000000000000000-gone': null
    })
    expect(parsePathInfo(stdout)).toEqual([
      { path: OUT, narSize: 2048, deriver: DRV, registrationTime: 1760000000, ultimate: true }
    ])
  })

  it('reads a missing ultimate (Nix prints it only when true, so a copied-in path has none) as false', () => {
    const stdout = JSON.stringify({ [OUT]: { narSize: 2048, deriver: DRV, registrationTime: 1760000000 } })
    expect(parsePathInfo(stdout)).toEqual([
      { path: OUT, narSize: 2048, deriver: DRV, registrationTime: 1760000000, ultimate: false }
    ])
  })

  it('leaves out a deriver and a registration time the store does not know, and reads a missing size as 0', () => {
    expect(parsePathInfo(JSON.stringify({ [OUT]: {} }))).toEqual([{ path: OUT, narSize: 0, ultimate: false }])
    expect(parsePathInfo(JSON.stringify([{ path: OUT, deriver: null }]))).toEqual([
      { path: OUT, narSize: 0, ultimate: false }
    ])
  })

  it('skips list items without a path, and JSON of another shape', () => {
    expect(parsePathInfo('[{"narSize": 1}, 3, null]')).toEqual([])
    expect(parsePathInfo('null')).toEqual([])
    expect(parsePathInfo('"x"')).toEqual([])
  })

  // Nix before the keyed form (2.8 and the rest of the list era) prints a path that is not in the store as
  // {"path": …, "valid": false} (Store::pathInfoToJSON, libstore/store-api.cc, catch (InvalidPath &)). Read as
  // valid, the store proof says "copied into …, not built there" instead of "not valid in …".
  it("leaves out a path Nix 2.8's list marks as not valid", () => {
    expect(parsePathInfo(JSON.stringify([{ path: OUT, valid: false }]))).toEqual([])
  })
})

describe('parseDerivationOutputs', () => {
  // .drv files written by Nix 2.8 in the lab (`nix-instantiate`), the env cut short.
  it('reads every output path at the head of a .drv, in its order', () => {
    expect(
      parseDerivationOutputs(
        'Derive([("dev","/nix/store/qizvx0vgplk3a54fn47cqsxd92k3jrfq-multi-dev","",""),("out","/nix/store/g08jzwmk1g91w3mdzw2hxi6li017v2xp-multi","","")],[],[],"x86_64-linux","/bin/sh",["-c","echo \\"a,b\\" > $out; echo > $dev"],[("builder","/bin/sh")])'
      )
    ).toEqual([
      '/nix/store/qizvx0vgplk3a54fn47cqsxd92k3jrfq-multi-dev',
      '/nix/store/g08jzwmk1g91w3mdzw2hxi6li017v2xp-multi'
    ])
    expect(
      parseDerivationOutputs(
        'Derive([("out","/nix/store/ap9h69qwrm5060ldi96axyklh3pr3yjn-fixed","sha256","0000000000000000000000000000000000000000000000000000000000000000")],[],[],"x86_64-linux","/bin/sh",["-c","x"],[])'
      )
    ).toEqual(['/nix/store/ap9h69qwrm5060ldi96axyklh3pr3yjn-fixed'])
  })

  it('leaves to `nix derivation show` a floating content-addressed output, another format or a damaged file', () => {
    expect(
      parseDerivationOutputs('Derive([("out","","r:sha256","")],[],[],"x86_64-linux","/bin/sh",[],[])')
    ).toBe(undefined)
    expect(parseDerivationOutputs('DrvWithVersion("xp-dyn-drv",[("out","/nix/store/a-b","","")],[])')).toBe(
      undefined
    )
    expect(parseDerivationOutputs('Derive([("out","/nix/store/a-b","",""')).toBe(undefined)
    expect(parseDerivationOutputs('')).toBe(undefined)
    expect(parseDerivationOutputs('{"out":"/nix/store/a-b"}')).toBe(undefined)
  })
})

describe('sshDestination and builderNix', () => {
  const PLAIN = 'ssh-ng://nixbuilder@nix-offload-a1b2c3-1'
  const WITH_PROGRAM = `${PLAIN}?remote-program=/nix/var/nix/profiles/default/bin/nix-daemon`

  it("gives ssh the user and alias, without the store URI's settings", () => {
    expect(sshDestination(PLAIN)).toBe('nixbuilder@nix-offload-a1b2c3-1')
    expect(sshDestination(WITH_PROGRAM)).toBe('nixbuilder@nix-offload-a1b2c3-1')
  })

  it("runs the builder's `nix` beside remote-program, else the one on its PATH", () => {
    expect(builderNix(PLAIN)).toBe('nix')
    expect(builderNix(WITH_PROGRAM)).toBe('/nix/var/nix/profiles/default/bin/nix')
  })
})
