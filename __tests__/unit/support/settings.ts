import type { Settings } from '../../../src/inputs/settings.js'

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
    mode: 'build',
    canary: { payloadMb: 8, maxConnectMs: 2000, maxBuildSeconds: 300, minFreeGb: 10, trendFactor: 3 },
    multiplex: true,
    strategy: 'hook',
    copyBack: true,
    evaluate: 'runner',
    fallback: 'fail',
    keyMissing: false,
    notices: [],
    ...overrides
  }
}
