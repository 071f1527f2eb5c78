import { Input } from '../../../src/inputs/constants.js'
import type { Builder, Settings } from '../../../src/inputs/settings.js'

/** Settings as parseSettings gives them for a minimal configuration, with no builder; tests override what they need. */
export function settingsWith(overrides: Partial<Settings> = {}): Settings {
  return {
    builders: [],
    privateKey: { text: '', type: 'ssh-ed25519', publicLine: '' },
    knownHosts: [],
    buildersUseSubstitutes: true,
    installables: ['nixpkgs#hello'],
    args: [],
    localJobs: 0,
    requireRemote: true,
    rebuild: false,
    summary: true,
    skipUnhealthy: false,
    multiplex: true,
    strategy: 'hook',
    copyBack: true,
    evaluate: 'runner',
    fallback: 'fail',
    retries: 1,
    minFreeGib: 0,
    keyMissing: false,
    notices: [],
    ...overrides
  }
}

/** One builder with every value known, as the preflight hands it on; tests override what they need. */
export function builderWith(overrides: Partial<Builder> = {}): Builder {
  return {
    protocol: 'ssh-ng',
    host: 'builder.example.com',
    port: 22,
    user: 'nixbuilder',
    systems: ['x86_64-linux'],
    maxJobs: 1,
    speedFactor: 1,
    supportedFeatures: [],
    mandatoryFeatures: [],
    origin: "input 'host'",
    pinInput: Input.HostPublicKey,
    ...overrides
  }
}
