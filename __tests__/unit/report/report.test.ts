import { Input } from '../../../src/inputs/constants.js'
import { describe, expect, it } from 'vitest'
import type { BuildRecord } from '../../../src/nix/ledger.js'
import type { Plan } from '../../../src/runner/plan.js'
import type { ConfiguredBuilder } from '../../../src/inputs/index.js'
import { hostPort } from '../../../src/inputs/builder.js'
import { makeReport, proofLine } from '../../../src/report/report.js'
import { formatDuration, renderSummary } from '../../../src/report/summary.js'

const A = '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-2.12.drv'
const B = '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-jq-1.7.drv'
const URI_1 = 'ssh-ng://nixbuilder@nix-offload-a1b2c3-1'
const URI_2 = 'ssh://root@nix-offload-a1b2c3-2'
const START = Date.UTC(2024, 0, 2, 3, 4, 5)

function builder(overrides: Partial<ConfiguredBuilder>): ConfiguredBuilder {
  return {
    protocol: 'ssh-ng',
    host: 'builder.example.com',
    port: 2222,
    user: 'nixbuilder',
    systems: ['x86_64-linux'],
    maxJobs: 2,
    speedFactor: 1,
    supportedFeatures: ['kvm'],
    mandatoryFeatures: ['benchmark'],
    origin: "input 'host'",
    pinInput: Input.HostPublicKey,
    alias: 'nix-offload-a1b2c3-1',
    storeUri: URI_1,
    ...overrides
  }
}

const PLAN: Plan = {
  token: 'a1b2c3',
  path: 'trusted-client',
  asRoot: true,
  workDir: '/root/.ssh/nix-offload-a1b2c3',
  machinesFile: '/root/.ssh/nix-offload-a1b2c3/machines',
  machinesShared: false,
  builders: [
    builder({}),
    builder({
      protocol: 'ssh',
      host: '2001:db8::7',
      port: 22,
      user: 'root',
      systems: ['aarch64-linux', 'x86_64-linux'],
      supportedFeatures: [],
      mandatoryFeatures: [],
      alias: 'nix-offload-a1b2c3-2',
      storeUri: URI_2
    })
  ],
  steps: [],
  nixConfig: '',
  warnings: []
}

function record(overrides: Partial<BuildRecord>): BuildRecord {
  return {
    drvPath: A,
    name: 'hello-2.12',
    machine: URI_1,
    start: START,
    end: START + 1500,
    status: 'built',
    attempts: 1,
    // 200 ms up, 150 ms until the builder starts it, 850 ms of building, 200 ms down.
    phases: {
      upload: { start: START, end: START + 200, bytes: 2048 },
      remote: { start: START + 350, end: START + 1200 },
      download: { start: START + 1300, end: START + 1500, bytes: 4096 },
      shared: []
    },
    ...overrides
  }
}

const TIMED = {
  uploadMs: 200,
  uploadBytes: 2048,
  waitMs: 150,
  buildMs: 850,
  downloadMs: 200,
  downloadBytes: 4096
}

describe('makeReport', () => {
  it('describes the builders, and each derivation with the builder it ran on', () => {
    const report = makeReport({ plan: PLAN, builds: [record({})], outPaths: ['/nix/store/x-hello-2.12'] })
    expect(report).toEqual({
      buildWallMs: 1500,
      busyMs: { [URI_1]: 1500 },
      configPath: 'trusted-client',
      builders: [
        {
          storeUri: URI_1,
          host: 'builder.example.com',
          port: 2222,
          user: 'nixbuilder',
          protocol: 'ssh-ng',
          systems: ['x86_64-linux'],
          maxJobs: 2,
          speedFactor: 1,
          supportedFeatures: ['kvm'],
          mandatoryFeatures: ['benchmark']
        },
        {
          storeUri: URI_2,
          host: '2001:db8::7',
          port: 22,
          user: 'root',
          protocol: 'ssh',
          systems: ['aarch64-linux', 'x86_64-linux'],
          maxJobs: 2,
          speedFactor: 1,
          supportedFeatures: [],
          mandatoryFeatures: []
        }
      ],
      preflight: [],
      stores: [],
      buildersHealthy: 0,
      derivations: [
        {
          drvPath: A,
          name: 'hello-2.12',
          machine: URI_1,
          builder: 'builder.example.com:2222',
          start: '2024-01-02T03:04:05.000Z',
          end: '2024-01-02T03:04:06.500Z',
          durationMs: 1500,
          status: 'built',
          attempts: 1,
          timing: TIMED,
          proof: { log: true }
        }
      ],
      overhead: { uploadMs: 200, waitMs: 150, downloadMs: 200, buildMs: 850, uncounted: 0 },
      outPaths: ['/nix/store/x-hello-2.12'],
      remoteBuilds: 1,
      localBuilds: 0,
      failedBuilds: 0,
      confirmed: true,
      strategy: 'hook'
    })
  })

  it('calls a build with an empty machine local and does not confirm the run', () => {
    const report = makeReport({
      plan: PLAN,
      builds: [record({}), record({ drvPath: B, name: 'jq-1.7', machine: '', attempts: 2 })],
      outPaths: []
    })
    expect(report.derivations[1]).toEqual({
      drvPath: B,
      name: 'jq-1.7',
      machine: 'local',
      start: '2024-01-02T03:04:05.000Z',
      end: '2024-01-02T03:04:06.500Z',
      durationMs: 1500,
      status: 'built',
      attempts: 2,
      timing: { uploadMs: 0, uploadBytes: 0, waitMs: 0, buildMs: 1500, downloadMs: 0, downloadBytes: 0 }
    })
    expect([report.remoteBuilds, report.localBuilds, report.confirmed]).toEqual([1, 1, false])
  })

  it('does not confirm a run that built nothing', () => {
    const report = makeReport({ plan: PLAN, builds: [], outPaths: [] })
    expect([report.derivations, report.remoteBuilds, report.localBuilds, report.confirmed]).toEqual([
      [],
      0,
      0,
      false
    ])
  })

  it('brackets an IPv6 builder and leaves out the end of an unfinished build', () => {
    const report = makeReport({
      plan: PLAN,
      builds: [
        record({
          machine: URI_2,
          end: undefined,
          status: 'unfinished',
          phases: {
            upload: { start: START, end: START + 200, bytes: 0 },
            remote: { start: START + 300 },
            shared: []
          }
        })
      ],
      outPaths: []
    })
    expect(report.derivations[0]).toEqual({
      drvPath: A,
      name: 'hello-2.12',
      machine: URI_2,
      builder: '[2001:db8::7]:22',
      start: '2024-01-02T03:04:05.000Z',
      status: 'unfinished',
      attempts: 1,
      timing: { uploadMs: 200, uploadBytes: 0, waitMs: 100 },
      proof: { log: true }
    })
  })

  it('names a machine that is not one of the planned builders by its URI, without a builder address', () => {
    const report = makeReport({
      plan: PLAN,
      builds: [record({ machine: 'ssh://someone@elsewhere' })],
      outPaths: []
    })
    expect(report.derivations[0]?.machine).toBe('ssh://someone@elsewhere')
    expect(report.derivations[0]?.builder).toBeUndefined()
    expect(report.remoteBuilds).toBe(1)
  })
})

describe('proofLine', () => {
  it("counts the derivations Nix's log shows built on each builder and on the runner, by the step's names", () => {
    const builds = [
      record({}),
      record({ drvPath: B, name: 'jq-1.7' }),
      record({ drvPath: `${A}x`, machine: URI_2 }),
      record({ drvPath: `${B}x`, machine: '' }),
      record({ drvPath: `${B}y`, machine: URI_2, status: 'failed' })
    ]
    expect(proofLine(makeReport({ plan: PLAN, builds }))).toBe(
      "Proof: Nix's log shows 2 derivation(s) built on nixbuilder@builder.example.com:2222, 1 on " +
        'root@[2001:db8::7]:22, 1 on the runner; 1 failed.'
    )
  })

  it("names a machine the step did not configure by no name from the log, and adds the builder's store's word", () => {
    const builds = [record({}), record({ drvPath: B, machine: 'ssh-ng://x]::error::forged' })]
    const storeProofs = new Map([[A, { log: true, store: false, problem: 'not valid there' }]])
    expect(proofLine(makeReport({ plan: PLAN, builds, storeProofs }))).toBe(
      "Proof: Nix's log shows 1 derivation(s) built on nixbuilder@builder.example.com:2222, 1 on another " +
        "machine; the builder's store confirms 0 of 1."
    )
    expect(proofLine(makeReport({ plan: PLAN }))).toBe("Proof: Nix's log shows no derivation built.")
  })
})

describe('hostPort', () => {
  it('writes host:port, with brackets around an IPv6 address', () => {
    expect(hostPort({ host: 'b.example.com', port: 22 })).toBe('b.example.com:22')
    expect(hostPort({ host: '::1', port: 2222 })).toBe('[::1]:2222')
  })
})

describe('formatDuration', () => {
  it('uses ms under a second, tenths of seconds under a minute, then minutes and seconds', () => {
    expect(formatDuration(0)).toBe('0 ms')
    expect(formatDuration(999)).toBe('999 ms')
    expect(formatDuration(1000)).toBe('1.0 s')
    expect(formatDuration(12_345)).toBe('12.3 s')
    expect(formatDuration(60_000)).toBe('1 min 0 s')
    expect(formatDuration(61_400)).toBe('1 min 1 s')
    expect(formatDuration(3_723_000)).toBe('62 min 3 s')
  })

  it('never shows 60 seconds next to minutes', () => {
    expect(formatDuration(119_600)).toBe('2 min 0 s')
  })
})

describe('renderSummary', () => {
  it("gives each builder's busy time with parallel builds counted once, and the whole build's time", () => {
    const B = '/nix/store/bbbb-other.drv'
    const builds = [
      record({}),
      record({ drvPath: B, name: 'other', start: START + 500, end: START + 2500 }),
      record({
        drvPath: '/nix/store/cccc-local.drv',
        name: 'local',
        machine: '',
        start: START,
        end: START + 100
      })
    ]
    const summary = renderSummary(makeReport({ plan: PLAN, builds, outPaths: [] }), true)
    expect(summary).toContain('| `nixbuilder@builder.example.com:2222` | 2 | 2.5 s |')
    expect(summary).toContain('| the runner | 1 | 100 ms |')
    expect(summary).toContain('Building took 2.5 s from the first')
  })

  it('confirms a run where every derivation was built on a builder', () => {
    const summary = renderSummary(
      makeReport({ plan: PLAN, builds: [record({})], outPaths: ['/nix/store/x-hello-2.12'] }),
      true
    )
    expect(summary).toBe(
      [
        '## nix-offload',
        '',
        "✅ **Confirmed**: all 1 derivation(s) were built on a builder, as Nix's log shows.",
        '',
        'Offload added 550 ms over 850 ms of building (upload 200 ms, waiting 150 ms, download 200 ms), summed over ' +
          'the derivations.',
        '',
        '| builder | store URI | systems | max jobs | speed | features |',
        '| --- | --- | --- | --- | --- | --- |',
        `| \`nixbuilder@builder.example.com:2222\` | \`${URI_1}\` | \`x86_64-linux\` | 2 | 1 | \`kvm\`, \`benchmark\` (mandatory) |`,
        `| \`root@[2001:db8::7]:22\` | \`${URI_2}\` | \`aarch64-linux\`, \`x86_64-linux\` | 2 | 1 | – |`,
        '',
        'Strategy: `hook`. How: the runner user is trusted by the nix-daemon: builders passed through NIX_CONFIG.',
        '',
        '| builder | derivations | busy |',
        '| --- | --- | --- |',
        '| `nixbuilder@builder.example.com:2222` | 1 | 1.5 s |',
        '| `root@[2001:db8::7]:22` | 0 | 0 ms |',
        '',
        "Building took 1.5 s from the first derivation's start to the last one's end; a builder's busy time counts its " +
          'parallel builds once.',
        '',
        '| derivation | built on | duration | status | upload | wait | build | download |',
        '| --- | --- | --- | --- | --- | --- | --- | --- |',
        '| `hello-2.12` | `builder.example.com:2222` | 1.5 s | built | 200 ms, 2.0 KiB | 150 ms | 850 ms | 200 ms, 4.0 KiB |',
        '',
        '<details><summary>Out paths</summary>',
        '',
        '- `/nix/store/x-hello-2.12`',
        '',
        '</details>',
        ''
      ].join('\n')
    )
  })

  it('counts local builds and shows the runner for them', () => {
    const report = makeReport({
      plan: { ...PLAN, path: 'machines-file' },
      builds: [
        record({}),
        record({ drvPath: B, name: 'jq-1.7', machine: '', end: undefined, status: 'built' })
      ],
      outPaths: []
    })
    const summary = renderSummary(report, true)
    expect(summary).toContain('⚠️ **1 of 2 derivation(s) were built on the runner**, 1 on a builder.\n')
    expect(summary).toContain(
      '| `jq-1.7` | **the runner** | – | built | 0 ms, 0 B | 0 ms | unknown | 0 ms, 0 B |\n'
    )
    expect(summary).toContain('1 derivation(s) left out: their figures are unknown or shared.')
    expect(summary).toContain(
      "How: the runner user is not trusted: builders written to the daemon's machines file."
    )
    expect(summary).not.toContain('Out paths')
  })

  it('counts a failed derivation as failed, not as built, and never confirms', () => {
    const report = makeReport({
      plan: PLAN,
      builds: [record({ status: 'failed' })],
      outPaths: [],
      outputsOnBuilder: false,
      succeeded: false
    })
    expect(report).toMatchObject({ remoteBuilds: 0, localBuilds: 0, failedBuilds: 1, confirmed: false })
    expect(renderSummary(report, true)).toContain(
      '❌ **1 derivation(s) failed**; 0 built on a builder, 0 on the runner.'
    )
    const succeededOnlyAfterAll = makeReport({
      plan: PLAN,
      builds: [record({})],
      outPaths: [],
      outputsOnBuilder: false,
      succeeded: false
    })
    expect(succeededOnlyAfterAll.confirmed).toBe(false)
  })

  it('says that nothing built proves nothing', () => {
    const summary = renderSummary(makeReport({ plan: PLAN, builds: [], outPaths: [] }), true)
    expect(summary).toContain('**Nothing was built**: every output was already valid')
    expect(summary).not.toContain('| derivation |')
  })

  it('says the runner was only configured when nothing was asked to build', () => {
    const summary = renderSummary(
      makeReport({ plan: { ...PLAN, path: 'single-user' }, builds: [], outPaths: [] }),
      false
    )
    expect(summary).toContain(
      "Configured the runner only (no `installables` or `args`): later steps' `nix build` offload to:"
    )
    expect(summary).toContain(
      'How: no nix-daemon: nix offloads as the runner user, builders passed through NIX_CONFIG.'
    )
  })

  it('escapes | in table cells', () => {
    const summary = renderSummary(
      makeReport({ plan: PLAN, builds: [record({ name: 'a|b' })], outPaths: [] }),
      true
    )
    expect(summary).toContain('| `a\\|b` |')
  })
})

describe('the preflight table and a builder whose key runs only one of Nix programs', () => {
  const checks = {
    runner: {
      nixVersion: '2.8.0',
      system: 'x86_64-linux',
      store: 'daemon' as const,
      user: 'runner',
      trusted: true
    },
    preflight: [
      {
        builder: 'nix-ssh@builder:22',
        origin: "input 'host'",
        healthy: true,
        connectMs: 3,
        authenticated: true,
        keyType: 'ssh-ed25519',
        remoteProgram: 'nix-daemon',
        access: 'nix-daemon' as const,
        unasked: ['systems', 'features', 'cores (max-jobs)', 'free space'],
        nixVersion: '2.8.0',
        durationMs: 300
      }
    ],
    stores: []
  }

  it('says what could not be asked, and that the inputs gave it', () => {
    const text = renderSummary(makeReport({ builds: [], outPaths: [], checks }), false)
    expect(text).toContain(
      'key runs only nix-daemon --stdio: systems, features and max-jobs from the inputs; not asked: systems, ' +
        'features, cores (max-jobs), free space'
    )
  })

  it('says nothing of the kind for a builder with a shell', () => {
    const shell = {
      ...checks,
      preflight: checks.preflight.map(result => ({ ...result, access: 'shell' as const }))
    }
    expect(renderSummary(makeReport({ builds: [], outPaths: [], checks: shell }), false)).not.toContain(
      'key runs only'
    )
  })
})
