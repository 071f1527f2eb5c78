import type { RunnerFacts } from '../../../src/runner/probe.js'

/** A multi-user runner whose daemon trusts its user (runner), on Nix 2.34.8; tests override what they need. */
export function runnerFactsWith(overrides: Partial<RunnerFacts> = {}): RunnerFacts {
  return {
    nixVersion: '2.34.8',
    nixImplementation: 'nix',
    system: 'x86_64-linux',
    store: 'daemon',
    userName: 'runner',
    isRoot: false,
    trusted: true,
    daemonBuilders: '',
    daemonBuildersUseSubstitutes: false,
    serviceManager: 'systemd',
    sshHome: '/root',
    nixPath: '/usr/bin/nix',
    ...overrides
  }
}
