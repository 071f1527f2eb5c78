import { describe, expect, it } from 'vitest'
import {
  checkPushRequest,
  parsePushTarget,
  pushPlace,
  type EvaluationRequest
} from '../../src/inputs/fields.js'
import { parseSettings } from '../../src/inputs/settings.js'
import { Input } from '../../src/inputs/constants.js'
import { makeReport } from '../../src/report/report.js'
import { renderSummary } from '../../src/report/summary.js'
import { pushCommand, pushStoreUri, refusePush } from '../../src/store-push.js'
import type { StoreRoute } from '../../src/nix/index.js'
import { settingsWith } from './support/settings.js'

const OUT = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello'
const BUILD: EvaluationRequest = { installables: ['.#hello'], args: [], strategy: 'auto' }

function route(overrides: Partial<StoreRoute> = {}): StoreRoute {
  return {
    index: 0,
    label: 'builder@b:22',
    storeUri: 'ssh-ng://builder@b',
    installables: ['.#hello'],
    derivations: [],
    ...overrides
  }
}

describe('push-to and push-key', () => {
  it.each([
    's3://bucket?region=eu-west-1&endpoint=minio.example:9000',
    'file:///var/cache/nix',
    'https://cache.example.org/nix',
    'ssh-ng://cache@host'
  ])('takes the store URI %s', uri => {
    expect(parsePushTarget(uri, '')).toEqual({ uri })
  })

  it('takes a key path on the builder', () => {
    expect(parsePushTarget('file:///tmp/cache', '/etc/nix/cache.sec')).toEqual({
      uri: 'file:///tmp/cache',
      keyPath: '/etc/nix/cache.sec'
    })
  })

  it('is nothing when unset', () => {
    expect(parsePushTarget('', '')).toBeUndefined()
  })

  it.each([
    ['file:///tmp/x; rm -rf /', /not a store URI/],
    ['file:///tmp/$(id)', /not a store URI/],
    ["file:///tmp/x'y", /not a store URI/],
    ['file:///tmp/`id`', /not a store URI/],
    ['file:///tmp/x\ny', /not a store URI/],
    ['file:///tmp/x\u0007', /not a store URI/],
    ['/var/cache/nix', /not a store URI/],
    ['gs://bucket', /not a store Nix copies to/],
    ['file://relative/dir', /names no place/],
    ['s3://?region=x', /names no place/],
    ['file:///tmp/c?secret-key=/k', /push-key/]
  ])('refuses %j', (uri, message) => {
    expect(() => parsePushTarget(uri, '')).toThrow(message)
    expect(() => parsePushTarget(uri, '')).toThrow(/^Input 'push-to'/)
  })

  it.each(['relative/key', '/k ey', '/a/../b', "/k'ey", '/k;ey'])('refuses the key path %j', key => {
    expect(() => parsePushTarget('file:///tmp/c', key)).toThrow(/^Input 'push-key'/)
  })

  it('refuses a key without a store', () => {
    expect(() => parsePushTarget('', '/k')).toThrow(/^Input 'push-key': is set without 'push-to'/)
  })

  it('names the store without its query', () => {
    expect(pushPlace('s3://bucket?region=x&secret-key=/k')).toBe('s3://bucket')
    expect(pushPlace('https://ci:hunter2@cache.example.org/nix')).toBe('https://cache.example.org/nix')
    expect(pushPlace('ssh-ng://cache@host')).toBe('ssh-ng://cache@host')
  })

  it.each([
    [{ ...BUILD, strategy: 'hook' }, /strategy: remote-store/],
    [{ ...BUILD, installables: [] }, /configure-only/]
  ])('refuses what it cannot serve (%j)', (request, message) => {
    expect(() => checkPushRequest(request)).toThrow(message)
  })

  it('is refused by parseSettings with strategy: hook, before anything', () => {
    const inputs: Partial<Record<Input, string>> = {
      [Input.Installables]: '.#hello',
      [Input.Strategy]: 'hook',
      [Input.PushTo]: 'file:///tmp/cache',
      [Input.Fallback]: 'local',
      [Input.Host]: 'b.example.com',
      [Input.User]: 'builder'
    }
    expect(() => parseSettings(name => inputs[name] ?? '', { system: 'x86_64-linux' })).toThrow(
      /^Input 'push-to'.*'strategy: hook'/
    )
  })
})

describe('the push on the builder', () => {
  it('quotes every word of the remote line, the URI and key included', () => {
    const target = { uri: 's3://bucket?region=eu&profile=ci', keyPath: '/etc/nix/key.sec' }
    expect(pushCommand('ssh-ng://builder@b', target, [OUT])).toBe(
      `'nix' '--extra-experimental-features' 'nix-command' 'copy' '--to' ` +
        `'s3://bucket?region=eu&profile=ci&secret-key=/etc/nix/key.sec' '--' '${OUT}' && ` +
        `'nix' '--extra-experimental-features' 'nix-command' 'path-info' '--json' '--recursive' '--' '${OUT}'`
    )
  })

  it('runs the nix beside remote-program', () => {
    const line = pushCommand('ssh-ng://b?remote-program=/opt/nix/bin/nix-daemon', { uri: 'file:///c' }, [OUT])
    expect(line.startsWith("'/opt/nix/bin/nix' ")).toBe(true)
  })

  it('adds the key as the first setting of a URI without a query', () => {
    expect(pushStoreUri({ uri: 'file:///c', keyPath: '/k' })).toBe('file:///c?secret-key=/k')
    expect(pushStoreUri({ uri: 'file:///c' })).toBe('file:///c')
  })
})

describe('refusals once the strategy is chosen', () => {
  const settings = settingsWith({ strategy: 'auto', pushTo: { uri: 'file:///c' } })

  it('refuses the hook that auto chose', () => {
    expect(() => refusePush(settings, { strategy: 'hook', routes: [] })).toThrow(
      /^Input 'push-to'.*'strategy: remote-store'/
    )
  })

  it('refuses a builder whose key runs only nix-daemon, naming it', () => {
    expect(() =>
      refusePush(settings, { strategy: 'remote-store', routes: [route({ access: 'nix-daemon' })] })
    ).toThrow(/^Input 'push-to': builder builder@b:22's key runs only nix-daemon/)
  })

  it('lets a shell builder push, and anything without push-to pass', () => {
    expect(() =>
      refusePush(settings, { strategy: 'remote-store', routes: [route({ access: 'shell' })] })
    ).not.toThrow()
    expect(() => refusePush(settingsWith(), { strategy: 'hook', routes: [] })).not.toThrow()
  })
})

describe('the report and summary of a push', () => {
  it('says what went where, and its bytes', () => {
    const report = makeReport({ outPaths: [OUT] })
    report.pushes = [
      {
        builder: 'ssh-ng://builder@b',
        to: 's3://bucket',
        signedWith: '/etc/nix/key.sec',
        paths: [OUT],
        closurePaths: 3,
        narBytes: 2048
      }
    ]
    const summary = renderSummary(report, true)
    expect(summary).toContain('### Pushed (`push-to`)')
    expect(summary).toMatch(
      /\| `ssh-ng:\/\/builder@b` \| `s3:\/\/bucket` \| `\/nix\/store\/[^|]*-hello` \| 3 paths \| 2\.0 KiB \| `\/etc\/nix\/key\.sec` \|/
    )
    expect(JSON.parse(JSON.stringify(report)).pushes[0].narBytes).toBe(2048)
  })
})
