import { describe, expect, it } from 'vitest'
import type { Diagnosis } from '../../../src/diagnosis/diagnosis.js'
import type { HostKey, PrivateKey } from '../../../src/inputs/keys.js'
import type { Observation } from '../../../src/builders/preflight.js'
import { judge, type PreflightResult } from '../../../src/builders/preflight-verdict.js'
import type { ConfiguredBuilder } from '../../../src/inputs/index.js'
import { secondLook } from '../../../src/builders/second-look.js'
import { configuredWith } from '../support/builders.js'

const PINNED: HostKey = {
  type: 'ssh-ed25519',
  blob: 'AAAAC3NzaC1lZDI1NTE5AAAAIKHJ22Z0hgvTpCIOIJUy6e+x2u4Ier8cNqyx84cSENpe'
}
const OTHER: HostKey = {
  type: 'ssh-ed25519',
  blob: 'AAAAC3NzaC1lZDI1NTE5AAAAICIqOYr/KfO5HIctZUlj18JkZCvaAS7/h3ANTQCb6odD'
}
const KEY: PrivateKey = { text: '', type: 'ssh-ed25519', publicLine: 'ssh-ed25519 AAAA runner' }

function builder(index: number, port: number): ConfiguredBuilder {
  return configuredWith(index, { host: '127.0.0.1', port, maxJobs: 4 })
}
const C = builder(1, 2223)
const D = builder(2, 2224)

/** What the preflight's own judge says about a builder in this state: the second look reuses its verdict. */
const STATES: Record<
  'down' | 'host-key-changed' | 'key-refused' | 'healthy',
  Omit<Observation, 'totalMs'>
> = {
  down: {
    reach: { ok: false, failure: 'refused', detail: 'ECONNREFUSED: connect ECONNREFUSED' },
    pinned: [PINNED]
  },
  'host-key-changed': { reach: { ok: true, connectMs: 1 }, presented: OTHER, pinned: [PINNED] },
  'key-refused': {
    reach: { ok: true, connectMs: 1 },
    presented: PINNED,
    pinned: [PINNED],
    authenticated: false
  },
  healthy: {
    reach: { ok: true, connectMs: 1 },
    presented: PINNED,
    pinned: [PINNED],
    authenticated: true,
    facts: {
      access: 'shell',
      unasked: [],
      program: 'nix-daemon',
      programFound: true,
      nixVersion: '2.34.8',
      user: 'nixbuilder',
      groups: [],
      extraPlatforms: [],
      systemFeatures: [],
      trustedUsers: ['nixbuilder']
    }
  }
}

function verdict(target: ConfiguredBuilder, state: keyof typeof STATES): PreflightResult {
  return judge(target, { ...STATES[state], totalMs: 3 }, KEY).result
}

/** What src/diagnosis/diagnosis-rules.ts says for Nix 2.34's `failed to start SSH connection` (abridged to the first line). */
function unreachable(target: ConfiguredBuilder): Diagnosis {
  return {
    cause: 'builder-unreachable',
    severity: 'error',
    title: `Builder unreachable: nixbuilder@127.0.0.1:${target.port}`,
    message:
      `Builder nixbuilder@127.0.0.1:${target.port} is unreachable: Nix's SSH connection to ${target.storeUri} failed ` +
      `before the build (failed to start SSH connection to '${target.alias}').\nLikely causes: …`,
    machine: target.storeUri
  }
}

function run(
  diagnoses: Diagnosis[],
  states: Map<ConfiguredBuilder, keyof typeof STATES>
): Promise<{ diagnoses: Diagnosis[]; checked: string[]; lines: string[] }> {
  const checked: string[] = []
  const lines: string[] = []
  return secondLook(diagnoses, [C, D], {
    check: async target => {
      checked.push(target.alias)
      const state = states.get(target)
      if (state === undefined) throw new Error('not a lost builder')
      return verdict(target, state)
    },
    info: line => lines.push(line)
  }).then(revised => ({ diagnoses: revised, checked, lines }))
}

describe('secondLook', () => {
  it.each([
    [
      'down',
      'unreachable',
      /^Builder nixbuilder@127\.0\.0\.1:2223 is unreachable: connection refused on 127\.0\.0\.1 port 2223/
    ],
    [
      'host-key-changed',
      'host-key-mismatch',
      /^Builder nixbuilder@127\.0\.0\.1:2223 presented a host key that is not the pinned one: it presented ssh-ed25519 SHA256:/
    ],
    [
      'key-refused',
      'key-refused',
      /^Builder nixbuilder@127\.0\.0\.1:2223 refused the client key \(ssh-ed25519\) for user nixbuilder: /
    ]
  ] as const)(
    '%s: the cause found now is the first line, in the preflight’s words',
    async (state, cause, first) => {
      const { diagnoses, checked, lines } = await run([unreachable(C)], new Map([[C, state]]))
      expect(checked).toEqual(['nix-offload-a1b2c3-1'])
      expect(lines).toEqual([
        `Second look at builder nixbuilder@127.0.0.1:2223, which Nix could not connect to during the build: ${cause}.`
      ])
      const [revised] = diagnoses
      expect(revised?.cause).toBe('builder-unreachable')
      expect(revised?.machine).toBe(C.storeUri)
      expect(revised?.title).toBe(`nixbuilder@127.0.0.1:2223 ${cause} (checked again after the build)`)
      const message = revised?.message.split('\n') ?? []
      expect(message[0]).toMatch(first)
      expect(message[0]).toBe(verdict(C, state).message)
      expect(message[1]).toContain('passed the preflight at the start of the step, so this changed since')
      expect(message[2]).toBe(
        "Nix's own report: Builder nixbuilder@127.0.0.1:2223 is unreachable: Nix's SSH connection to " +
          'ssh-ng://nixbuilder@nix-offload-a1b2c3-1 failed before the build (failed to start SSH connection to ' +
          "'nix-offload-a1b2c3-1')."
      )
    }
  )

  it("healthy now: Nix's diagnosis stays first, with what the check found", async () => {
    const original = unreachable(C)
    const { diagnoses, lines } = await run([original], new Map([[C, 'healthy']]))
    expect(lines).toEqual([
      'Second look at builder nixbuilder@127.0.0.1:2223, which Nix could not connect to during the build: reachable now.'
    ])
    expect(diagnoses[0]?.title).toBe(original.title)
    expect(diagnoses[0]?.message.startsWith(original.message)).toBe(true)
    expect(diagnoses[0]?.message).toContain(
      "Checked again after the build, the builder answers the action's own SSH"
    )
  })

  it('checks each lost builder once, leaves the other diagnoses and builders alone, and keeps the order', async () => {
    const failed: Diagnosis = {
      cause: 'build-failed-on-builder',
      severity: 'error',
      title: 'Build failed',
      message: 'Derivation x failed',
      machine: D.storeUri
    }
    const fallback: Diagnosis = { ...unreachable(C), cause: 'local-fallback', severity: 'warning' }
    const { diagnoses, checked } = await run(
      [failed, unreachable(C), unreachable(C), fallback],
      new Map([[C, 'down']])
    )
    expect(checked).toEqual(['nix-offload-a1b2c3-1'])
    expect(diagnoses.map(d => d.cause)).toEqual([
      'build-failed-on-builder',
      'builder-unreachable',
      'builder-unreachable',
      'local-fallback'
    ])
    expect(diagnoses[0]).toBe(failed)
    expect(diagnoses[3]).toBe(fallback)
    expect(diagnoses[1]?.message).toMatch(
      /^Builder nixbuilder@127\.0\.0\.1:2223 is unreachable: connection refused/
    )
  })

  it('checks several lost builders at once', async () => {
    const { diagnoses, checked } = await run(
      [unreachable(C), unreachable(D)],
      new Map<ConfiguredBuilder, keyof typeof STATES>([
        [C, 'key-refused'],
        [D, 'host-key-changed']
      ])
    )
    expect(checked.sort()).toEqual(['nix-offload-a1b2c3-1', 'nix-offload-a1b2c3-2'])
    expect(diagnoses[0]?.message).toMatch(/^Builder nixbuilder@127\.0\.0\.1:2223 refused the client key/)
    expect(diagnoses[1]?.message).toMatch(/^Builder nixbuilder@127\.0\.0\.1:2224 presented a host key/)
  })

  it('does nothing for a builder the action did not configure, nor when no builder was lost', async () => {
    const foreign: Diagnosis = { ...unreachable(C), machine: 'ssh://me@elsewhere' }
    const none = await run([foreign], new Map())
    expect(none.checked).toEqual([])
    expect(none.diagnoses).toEqual([foreign])
  })

  it("keeps Nix's diagnosis when the check itself fails", async () => {
    const original = unreachable(D)
    const { diagnoses, checked, lines } = await run([original], new Map())
    expect(checked).toEqual(['nix-offload-a1b2c3-2'])
    expect(lines).toEqual([])
    expect(diagnoses).toEqual([original])
  })
})
