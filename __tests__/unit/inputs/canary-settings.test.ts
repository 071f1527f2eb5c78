import ssh2 from 'ssh2'
import { describe, expect, it } from 'vitest'
import { CANARY_INPUTS, Input } from '../../../src/inputs/constants.js'
import { InputError } from '../../../src/inputs/errors.js'
import {
  type CanarySettings,
  type InputReader,
  parseCanarySettings,
  parseSettings
} from '../../../src/inputs/settings.js'
import { readableKeyPair } from '../support/ssh-keys.js'

type Inputs = Partial<Record<`${Input}`, string>>

const DEFAULTS = { system: 'x86_64-linux' }
const clientKey = readableKeyPair(() => ssh2.utils.generateKeyPairSync('ed25519'))

/** Every builder input the two actions share, each away from its default. */
const BUILDERS: Inputs = {
  host: 'builder.example.com',
  port: '2222',
  user: 'nixbuilder',
  'ssh-private-key': clientKey.private,
  protocol: 'ssh',
  'remote-program': '/nix/var/nix/profiles/default/bin',
  systems: 'aarch64-linux',
  'max-jobs': '4',
  'speed-factor': '2',
  'supported-features': 'kvm',
  'mandatory-features': 'big-parallel',
  builders: 'ssh-ng://nixbuilder@arm.example.com aarch64-linux',
  'known-hosts':
    'arm.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL6YugzZkPtpsXcQt/1KM7P18xYeQGaoDYwMstr4T8Zx',
  'builders-use-substitutes': 'false',
  summary: 'false',
  multiplex: 'false'
}

function reader(values: Inputs): InputReader {
  return name => values[name] ?? ''
}

function parse(values: Inputs): CanarySettings | Error {
  try {
    return parseCanarySettings(reader(values), DEFAULTS)
  } catch (error) {
    return error as Error
  }
}

describe('parseCanarySettings: the canary action', () => {
  it('reads the builder inputs exactly as the build does', () => {
    const canary = parse(BUILDERS)
    expect(canary).not.toBeInstanceOf(Error)
    const { canary: thresholds, ...shared } = canary as CanarySettings
    expect(shared).toEqual({ ...parseSettings(reader(BUILDERS), DEFAULTS), strategy: 'hook' })
    expect(Object.keys(BUILDERS).every(name => CANARY_INPUTS.includes(name as Input))).toBe(true)
    expect(thresholds).toEqual({
      payloadMb: 8,
      maxConnectMs: 2000,
      maxBuildSeconds: 300,
      minFreeGb: 10,
      trendFactor: 3
    })
  })

  it('reads its thresholds', () => {
    const canary = parse({
      ...BUILDERS,
      'canary-payload-mb': '0.5',
      'max-connect-ms': '500',
      'max-build-seconds': '120',
      'min-free-gb': '20',
      'trend-factor': '1.5'
    })
    expect((canary as CanarySettings).canary).toEqual({
      payloadMb: 0.5,
      maxConnectMs: 500,
      maxBuildSeconds: 120,
      minFreeGb: 20,
      trendFactor: 1.5
    })
  })

  it('refuses a threshold out of range, naming the input', () => {
    expect(parse({ ...BUILDERS, 'canary-payload-mb': '4097' })).toEqual(
      new InputError(Input.CanaryPayloadMb, `"4097" is not a number from 0 to 4096`)
    )
    expect(parse({ ...BUILDERS, 'trend-factor': '0' })).toEqual(
      new InputError(Input.TrendFactor, `"0" is not a number from 1 to 1000`)
    )
  })

  it("leaves the build's own inputs at their defaults, whatever a reader hands it", () => {
    const canary = parse({
      ...BUILDERS,
      installables: '.#hello',
      args: '--impure',
      'local-jobs': '4',
      rebuild: 'true',
      strategy: 'remote-store',
      evaluate: 'builder',
      'push-to': 's3://bucket',
      retries: '5',
      'min-free-gib': '50',
      'skip-unhealthy': 'true'
    }) as CanarySettings
    expect(canary).toMatchObject({
      installables: [],
      args: [],
      localJobs: 0,
      rebuild: false,
      strategy: 'hook',
      evaluate: 'runner',
      retries: 1,
      minFreeGib: 0,
      skipUnhealthy: false
    })
    expect(canary.pushTo).toBeUndefined()
  })

  it("needs the key: `fallback: local`, the build's way to run without one, is not the canary's", () => {
    const error = parse({ ...BUILDERS, 'ssh-private-key': '', fallback: 'local' })
    expect(error).toBeInstanceOf(Error)
    expect((error as Error).message).toMatch(/^Input 'ssh-private-key': is required/)
  })
})
