import { describe, expect, it } from 'vitest'
import type { BuilderFacts } from '../../../src/builders/builder-facts.js'
import { Input } from '../../../src/inputs/constants.js'
import type { HostKey, PrivateKey } from '../../../src/inputs/keys.js'
import type { Observation } from '../../../src/builders/preflight.js'
import { judge, type PreflightResult, preflightWarnings } from '../../../src/builders/preflight-verdict.js'
import type { BuilderRequest } from '../../../src/inputs/settings.js'
import { requestWith } from '../support/builders.js'
import { settingsWith } from '../support/settings.js'

const HOST_KEY: HostKey = {
  type: 'ssh-ed25519',
  blob: 'AAAAC3NzaC1lZDI1NTE5AAAAIKHJ22Z0hgvTpCIOIJUy6e+x2u4Ier8cNqyx84cSENpe'
}
const KEY: PrivateKey = { text: '', type: 'ssh-ed25519', publicLine: 'ssh-ed25519 AAAA runner' }

const REQUEST = requestWith({ host: '127.0.0.1', port: 2223, maxJobs: 4 })

function facts(trustedUsers: string[], nixVersion = '2.34.8'): BuilderFacts {
  return {
    access: 'shell',
    unasked: [],
    program: 'nix-daemon',
    programFound: true,
    nixVersion,
    user: 'nixbuilder',
    groups: ['nixbuilder'],
    extraPlatforms: [],
    systemFeatures: [],
    trustedUsers
  }
}

function preflightOf(trustedUsers: string[]): PreflightResult {
  const observation: Observation = {
    reach: { ok: true, connectMs: 1 },
    presented: HOST_KEY,
    pinned: [HOST_KEY],
    authenticated: true,
    facts: facts(trustedUsers),
    totalMs: 5
  }
  return judge(REQUEST, observation, KEY).result
}

describe('preflightWarnings: an untrusted builder user with local-jobs > 0', () => {
  const building = settingsWith({ builders: [REQUEST], localJobs: 2 })

  it('warns, naming the builder, the user, why a build would fail and both fixes', () => {
    const untrusted = preflightOf(['root'])
    expect(untrusted.healthy).toBe(true)
    expect(untrusted.builderUserTrusted).toBe(false)
    const [warning, ...more] = preflightWarnings([REQUEST], [untrusted], building)
    expect(more).toEqual([])
    expect(warning?.builder).toBe('nixbuilder@127.0.0.1:2223')
    expect(warning?.title).toBe('user not trusted')
    expect(warning?.message).toBe(
      'Builder nixbuilder@127.0.0.1:2223: its Nix does not trust user nixbuilder, so it refuses paths built on the ' +
        "runner unless they are signed by a key it trusts, and with 'local-jobs: 2' Nix may build inputs on the runner " +
        'and send them ("lacks a signature by a trusted key"). Fix: on the builder add "trusted-users = nixbuilder" ' +
        'to /etc/nix/nix.conf (NixOS: nix.settings.trusted-users) and restart its nix-daemon, or set ' +
        "'local-jobs: 0' so the builders build every derivation."
    )
  })

  it('says nothing with local-jobs 0, for a trusted user, or when trust is unknown', () => {
    expect(preflightWarnings([REQUEST], [preflightOf(['root'])], { ...building, localJobs: 0 })).toEqual([])
    expect(preflightWarnings([REQUEST], [preflightOf(['root', '@nixbuilder'])], building)).toEqual([])
    const unknown = { ...preflightOf(['root']), builderUserTrusted: undefined }
    expect(preflightWarnings([REQUEST], [unknown], building)).toEqual([])
  })

  it('says nothing when the action builds nothing itself (local-jobs only sets its own build)', () => {
    const configureOnly = { ...building, installables: [], args: [] }
    expect(preflightWarnings([REQUEST], [preflightOf(['root'])], configureOnly)).toEqual([])
  })

  it('leaves a builder that failed the preflight to its error', () => {
    const old = judge(
      REQUEST,
      {
        reach: { ok: true, connectMs: 1 },
        presented: HOST_KEY,
        pinned: [HOST_KEY],
        authenticated: true,
        facts: facts(['root'], '2.8.0'),
        totalMs: 5
      },
      KEY
    ).result
    expect(old.cause).toBe('builder-user-untrusted')
    expect(preflightWarnings([REQUEST], [old], building)).toEqual([])
  })

  it('passes an untrusted builder user on an old Nix for remote-store, which needs no trust there, and names it as the fix', () => {
    const observation: Observation = {
      reach: { ok: true, connectMs: 1 },
      presented: HOST_KEY,
      pinned: [HOST_KEY],
      authenticated: true,
      facts: facts(['root'], '2.8.0'),
      totalMs: 5
    }
    const hook = judge(REQUEST, observation, KEY, '2.8.0', 'hook').result
    expect(hook.cause).toBe('builder-user-untrusted')
    expect(hook.message).toContain("or set 'strategy: remote-store'")
    const store = judge(REQUEST, observation, KEY, '2.8.0', 'remote-store').result
    expect(store.healthy).toBe(true)
    expect(store.builderUserTrusted).toBe(false)
  })
})

describe('judge: messages that say where to look', () => {
  const fromBuilders: BuilderRequest = { ...REQUEST, origin: "'builders' line 1", pinInput: Input.KnownHosts }

  it("points a refused connection at the builders line's port, not the port input, for a builder from builders", () => {
    const observation: Observation = {
      reach: { ok: false, failure: 'refused', detail: 'ECONNREFUSED' },
      pinned: [HOST_KEY],
      totalMs: 1
    }
    expect(judge(fromBuilders, observation, KEY).result.message).toContain(
      "is the port in 'builders' line 1 right?"
    )
    expect(judge(REQUEST, observation, KEY).result.message).toContain("is 'port' right?")
  })

  it("points at the builders line's port for a builder pinned by its own column 8 too", () => {
    const observation: Observation = {
      reach: { ok: false, failure: 'refused', detail: 'ECONNREFUSED' },
      pinned: [HOST_KEY],
      totalMs: 1
    }
    const pinnedInLine: BuilderRequest = { ...fromBuilders, pinInput: Input.Builders }
    expect(judge(pinnedInLine, observation, KEY).result.message).toContain(
      "is the port in 'builders' line 1 right?"
    )
  })

  it('names PerSourcePenalties when the builder drops the connection before the handshake', () => {
    const observation: Observation = {
      reach: { ok: true, connectMs: 1 },
      pinned: [HOST_KEY],
      error: 'Connection lost before handshake',
      totalMs: 1
    }
    const { message } = judge(REQUEST, observation, KEY).result
    expect(message).toContain('the SSH session failed: Connection lost before handshake.')
    expect(message).toContain('PerSourcePenalties')
  })
})

describe("judge: the builder user's store", () => {
  const observe = (store: Partial<BuilderFacts>): Observation => ({
    reach: { ok: true, connectMs: 1 },
    presented: HOST_KEY,
    pinned: [HOST_KEY],
    authenticated: true,
    facts: { ...facts(['root', 'nixbuilder']), ...store },
    totalMs: 5
  })

  it('fails a builder whose store did not answer, naming it, the check and the fix', () => {
    const hung = judge(
      REQUEST,
      observe({ storeAnswers: false, storeError: 'no answer within 30 s' }),
      KEY
    ).result
    expect(hung.healthy).toBe(false)
    expect(hung.cause).toBe('store-unresponsive')
    expect(hung.message).toBe(
      'Builder nixbuilder@127.0.0.1:2223: its Nix store does not answer: `nix store ping` as nixbuilder there: no ' +
        'answer within 30 s. The SSH login works, but every build there needs its nix-daemon: is it running and ' +
        'responsive? Fix: restart it on the builder (systemctl restart nix-daemon).'
    )
  })

  it('passes one whose store answered, or where the check could not run', () => {
    expect(judge(REQUEST, observe({ storeAnswers: true }), KEY).result.healthy).toBe(true)
    expect(judge(REQUEST, observe({}), KEY).result.healthy).toBe(true)
  })
})

describe('judge: no Nix where the builder runs it', () => {
  function missing(request: BuilderRequest, program: string): string {
    const observation: Observation = {
      reach: { ok: true, connectMs: 1 },
      presented: HOST_KEY,
      pinned: [HOST_KEY],
      authenticated: true,
      facts: { ...facts(['root']), program, programFound: false, nixVersion: '' },
      totalMs: 5
    }
    const { result } = judge(request, observation, KEY)
    expect(result.healthy).toBe(false)
    return result.message ?? ''
  }

  it('names the remote-program input as the fix from the workflow, beside the fixes on the builder', () => {
    const message = missing(REQUEST, 'nix-daemon')
    expect(message).toMatch(/^Builder .*: nix-daemon is not on the non-interactive PATH of nixbuilder/)
    expect(message).toContain(
      'set `remote-program: /nix/var/nix/profiles/default/bin` (where `command -v nix-daemon` finds it in a login shell'
    )
    expect(message).toContain('~nixbuilder/.bashrc')
    expect(message).toContain('SetEnv PATH=')
  })

  it('blames the remote-program input when the program it names is not there', () => {
    const program = '/opt/nix/bin/nix-store'
    const message = missing({ ...REQUEST, protocol: 'ssh', remoteProgram: program }, program)
    expect(message).toMatch(
      /^Input 'remote-program': builder .* has no executable \/opt\/nix\/bin\/nix-store/
    )
    expect(message).toContain('`/opt/nix/bin/nix-store --serve --write`')
    expect(message).toContain('`command -v nix-store`')
  })
})
