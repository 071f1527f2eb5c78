import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Input } from '../../../src/inputs/constants.js'
import {
  type BuilderOffer,
  builderOffer,
  type Cause,
  type Diagnosis,
  type DiagnosisContext,
  diagnose,
  orderDiagnoses
} from '../../../src/diagnosis/diagnosis.js'
import { NixLogReader } from '../../../src/nix/ledger.js'
import { parseNixLine, stripAnsi } from '../../../src/nix/nix-log.js'
import { offerWith } from '../support/builders.js'
import { fixtureErrors, fixtureLines, readFixture } from '../support/fixtures.js'

const URI_1 = 'ssh-ng://nixbuilder@nix-offload-a1b2c3-1'
const LABEL_1 = 'nixbuilder@10.0.0.5:22'
const URI_2 = 'ssh://root@nix-offload-a1b2c3-2'
const LABEL_2 = 'root@10.0.0.6:2222'
const DRV = '/nix/store/0a9hbqzqh3jv1cvpbw3bbj8s7vxlg6yf-kvm-test.drv'
const DRV_BASE = '0a9hbqzqh3jv1cvpbw3bbj8s7vxlg6yf-kvm-test.drv'

const BUILDER_1 = offerWith({ storeUri: URI_1, label: LABEL_1, supportedFeatures: ['big-parallel'] })
const BUILDER_2 = offerWith({
  storeUri: URI_2,
  label: LABEL_2,
  systems: ['aarch64-linux'],
  mandatoryFeatures: ['benchmark'],
  origin: "input 'builders' line 2",
  pinInput: 'known-hosts'
})

function context(overrides: Partial<DiagnosisContext> = {}): DiagnosisContext {
  return { builders: [BUILDER_1, BUILDER_2], lastLogLines: () => [], runnerUser: 'runner', ...overrides }
}

function firstLine(diagnosis: Diagnosis | undefined): string {
  return diagnosis?.message.split('\n')[0] ?? ''
}

function causes(diagnoses: Diagnosis[]): Cause[] {
  return diagnoses.map(d => d.cause)
}

describe('builder-unreachable', () => {
  it.each([
    [
      'Nix 2.8 ssh-ng, host key mismatch (seen on the lab)',
      `cannot build on '${URI_1}': error: cannot open connection to remote store '${URI_1}': error: unexpected end-of-file`
    ],
    [
      'Nix 2.16+ ssh.cc',
      `cannot build on '${URI_1}': error: failed to start SSH connection to 'nixbuilder@nix-offload-a1b2c3-1'`
    ],
    [
      'Nix 2.20+ remote-store.cc',
      `cannot build on '${URI_1}': error: cannot open connection to remote store '${URI_1}': error: Nix daemon disconnected unexpectedly (maybe it crashed?)`
    ],
    [
      'Nix 2.16+ ssh.cc, not wrapped',
      "error: failed to start SSH connection to 'nixbuilder@nix-offload-a1b2c3-1'"
    ],
    [
      'Lix 2.91+ ssh.cc warning',
      "warning: SSH to 'nixbuilder@nix-offload-a1b2c3-1' failed, stdout first line: ''"
    ],
    [
      'Nix 2.8+ remote-store.cc, not wrapped',
      `error: cannot open connection to remote store '${URI_1}': error: unexpected end-of-file`
    ]
  ])('%s', (_version, message) => {
    const [first] = diagnose([message], context())
    expect(first?.cause).toBe('builder-unreachable')
    expect(first?.machine).toBe(URI_1)
    expect(first?.severity).toBe('error')
    expect(firstLine(first)).toContain(`Builder ${LABEL_1} is unreachable`)
    expect(first?.message).toContain('journalctl -u nix-daemon')
    expect(first?.title).toBe(`Builder unreachable: ${LABEL_1}`)
  })

  it("names an ssh:// builder from legacy-ssh-store.cc's `cannot connect to` (Nix 2.8+)", () => {
    const [first] = diagnose(
      [`cannot build on '${URI_2}': error: cannot connect to 'root@nix-offload-a1b2c3-2'`],
      context()
    )
    expect(first?.cause).toBe('builder-unreachable')
    expect(first?.machine).toBe(URI_2)
    expect(firstLine(first)).toContain(`Builder ${LABEL_2} is unreachable`)
  })

  it("turns ssh's own words into the likely cause when newer Nix passes them on (ssh:// log fd)", () => {
    const [first] = diagnose(
      [
        `cannot build on '${URI_2}': error: cannot connect to 'root@nix-offload-a1b2c3-2': Host key verification failed.`
      ],
      context()
    )
    expect(first?.message.split('\n')[1]).toBe("ssh rejected the builder's host key: update `known-hosts`.")
  })

  it('names a builder whose store URI carries remote-program, from the URI or from its ssh host alone', () => {
    const uri = `${URI_1}?remote-program=/nix/var/nix/profiles/default/bin/nix-daemon`
    const withProgram = context({ builders: [{ ...BUILDER_1, storeUri: uri }, BUILDER_2] })
    for (const message of [
      `cannot build on '${uri}': error: failed to start SSH connection to 'nixbuilder@nix-offload-a1b2c3-1'`,
      "error: failed to start SSH connection to 'nixbuilder@nix-offload-a1b2c3-1'",
      // remote-store.cc names the store without its settings.
      `error: cannot open connection to remote store '${URI_1}': error: unexpected end-of-file`
    ]) {
      const [first] = diagnose([message], withProgram)
      expect(first?.machine).toBe(uri)
      expect(firstLine(first)).toContain(`Builder ${LABEL_1} is unreachable`)
    }
  })

  it("names the remote-program input when the builder's shell found no Nix", () => {
    const [first] = diagnose(
      [
        `cannot build on '${URI_2}': error: cannot connect to 'root@nix-offload-a1b2c3-2': sh: nix-store: command not found`
      ],
      context()
    )
    expect(first?.message.split('\n')[1]).toMatch(
      /^Nix is not on the builder's non-interactive PATH: set `remote-program: \/nix\/var\/nix\/profiles\/default\/bin`/
    )
  })

  it('falls back to the store URI for a builder the action did not configure', () => {
    const [first] = diagnose(
      ["cannot build on 'ssh://me@elsewhere': error: cannot connect to 'me@elsewhere'"],
      context()
    )
    expect(firstLine(first)).toContain('Builder ssh://me@elsewhere is unreachable')
  })
})

describe('connection-dropped', () => {
  it.each([
    ['Nix ≤ 2.19', 'error: unexpected end-of-file'],
    ['Nix 2.20+ / Lix', 'error: Nix daemon disconnected unexpectedly (maybe it crashed?)']
  ])(
    '%s: names the derivation from the hook failure that follows, and its builder from the log',
    (_v, text) => {
      const diagnoses = diagnose([text, `error: builder for '${DRV}' failed with exit code 1`], {
        ...context(),
        machineOf: () => URI_1
      })
      expect(causes(diagnoses)).toEqual(['connection-dropped'])
      expect(diagnoses[0]?.drvPath).toBe(DRV)
      expect(diagnoses[0]?.machine).toBe(URI_1)
      expect(firstLine(diagnoses[0])).toContain(
        `Lost the connection to builder ${LABEL_1} while building kvm-test`
      )
    }
  )

  it('reads a lost connection inside `build of … on … failed` (build-remote.cc)', () => {
    const [first] = diagnose(
      [`error: build of '${DRV}' on '${URI_1}' failed: error: writing to file: Broken pipe`],
      context()
    )
    expect(first?.cause).toBe('connection-dropped')
    expect(first?.drvPath).toBe(DRV)
    expect(firstLine(first)).toBe(
      `Lost the connection to builder ${LABEL_1} while building kvm-test (writing to file: Broken pipe).`
    )
  })

  it('does not blame a builder when the runner built the derivation or its own daemon died', () => {
    const local = { ...context(), machineOf: () => '' }
    expect(
      diagnose(
        ['error: Connection reset by peer', `error: builder for '${DRV}' failed with exit code 1`],
        local
      )
    ).toEqual([])
    expect(
      diagnose(
        [
          "error: cannot open connection to remote store 'daemon': Nix daemon disconnected unexpectedly (maybe it crashed?)"
        ],
        context()
      )
    ).toEqual([])
  })
})

describe('build-failed-on-builder', () => {
  it('Nix 2.8 / Lix: `builder for … failed with exit code N` inside `build of … on …`', () => {
    const message =
      `error: build of '${DRV}' on '${URI_1}' failed: builder for '${DRV}' failed with exit code 3;\n` +
      '       last 2 log lines:\n       > checking kvm\n       > no /dev/kvm\n' +
      `       For full logs, run 'nix log ${DRV}'.`
    const [first] = diagnose([message, `error: builder for '${DRV}' failed with exit code 1`], context())
    expect(first?.cause).toBe('build-failed-on-builder')
    expect(first?.drvPath).toBe(DRV)
    expect(first?.machine).toBe(URI_1)
    expect(firstLine(first)).toBe(`Derivation kvm-test failed with exit code 3 on builder ${LABEL_1}.`)
    expect(first?.message).toContain("The derivation's own build failed there; offloading worked.")
    expect(first?.message).toContain('Last 2 log lines:\n> checking kvm\n> no /dev/kvm')
  })

  it('newer Nix (derivation-building-goal.cc): `Cannot build … Reason: builder failed …`, with the log from the ledger', () => {
    const message =
      `error: build of '${DRV}' on '${URI_1}' failed: Cannot build '${DRV}'.\n` +
      '       Reason: builder failed due to signal 9 (Killed).\n' +
      '       Output paths:\n         /nix/store/7n9x6mbyk8s5gqy0ym2d0s0r9kyaxp2a-kvm-test'
    const lines = Array.from({ length: 12 }, (_, i) => `line ${i + 1}`)
    const [first] = diagnose([message], context({ lastLogLines: drv => (drv === DRV ? lines : []) }))
    expect(firstLine(first)).toBe(
      `Derivation kvm-test failed due to signal 9 (Killed) on builder ${LABEL_1}.`
    )
    expect(first?.message).toContain('out-of-memory')
    expect(first?.message).toContain('Last 10 log lines:\n> line 3\n')
    expect(first?.message).not.toContain('> line 2\n')
  })

  it('leaves a plain local builder failure alone (Nix ≤ 2.29 and 2.30+ wordings)', () => {
    expect(diagnose([`error: builder for '${DRV}' failed with exit code 2`], context())).toEqual([])
    expect(
      diagnose([`error: Cannot build '${DRV}'.\n       Reason: builder failed with exit code 2.`], context())
    ).toEqual([])
  })
})

describe('no-matching-builder', () => {
  const table28 = '\n2 available machines:\n(systems, maxjobs, supportedFeatures, mandatoryFeatures)\n'

  it('Nix 2.8–2.11: lists without brackets', () => {
    const message =
      `Failed to find a machine for remote build!\nderivation: ${DRV_BASE}\n` +
      `required (system, features): (riscv64-linux, kvm, big-parallel)${table28}` +
      '(x86_64-linux, 1, big-parallel, )\n(aarch64-linux, 1, , benchmark)'
    const [first] = diagnose([message], context())
    expect(first?.cause).toBe('no-matching-builder')
    expect(first?.drvPath).toBe(DRV_BASE)
    expect(firstLine(first)).toBe(
      'No builder can build kvm-test: it needs riscv64-linux with features {kvm, big-parallel}.'
    )
    expect(first?.message).toContain(
      `- ${LABEL_1} offers x86_64-linux with features {big-parallel}: no riscv64-linux (input 'host')`
    )
    expect(first?.message).toContain(
      `- ${LABEL_2} offers aarch64-linux with features {benchmark (mandatory)}: no riscv64-linux (input 'builders' line 2)`
    )
    expect(first?.message).toContain('`systems` / `supported-features`')
  })

  it('Nix 2.12+ and Lix: bracketed lists; says which feature a builder lacks; prefers the full path', () => {
    const message =
      `Failed to find a machine for remote build!\nderivation: ${DRV_BASE}\n` +
      'required (system, features): (x86_64-linux, [kvm])\n1 available machines:\n' +
      '(systems, maxjobs, supportedFeatures, mandatoryFeatures)\n([x86_64-linux], 1, [big-parallel], [])'
    const diagnoses = diagnose(
      [
        message,
        'error: Unable to start any build; remote machines may not have all required system features.',
        `error: builder for '${DRV}' failed with exit code 1`
      ],
      context()
    )
    expect(causes(diagnoses)).toEqual(['no-matching-builder'])
    expect(diagnoses[0]?.drvPath).toBe(DRV)
    expect(diagnoses[0]?.message).toContain(
      `- ${LABEL_1} offers x86_64-linux with features {big-parallel}: lacks kvm`
    )
    expect(diagnoses[0]?.message).toContain(
      '--max-jobs 0 (`local-jobs`) also keeps Nix from building it on the runner.'
    )
  })

  it("shows Nix's own machine table when the action configured no builders", () => {
    const message =
      `Failed to find a machine for remote build!\nderivation: ${DRV_BASE}\n` +
      'required (system, features): (x86_64-linux, [kvm])\n1 available machines:\n' +
      '(systems, maxjobs, supportedFeatures, mandatoryFeatures)\n([aarch64-linux], 4, [], [])'
    const [first] = diagnose([message], context({ builders: [] }))
    expect(first?.message).toContain('Nix saw these machines:\n([aarch64-linux], 4, [], [])')
  })

  it('Nix 2.30–2.33: `Cannot build … Reason: required system or feature not available`', () => {
    const message =
      `error: Cannot build '${DRV}'.\n       Reason: required system or feature not available\n` +
      "       Required system: 'x86_64-linux' with features {kvm}\n" +
      "       Current system: 'x86_64-linux' with features {benchmark, big-parallel, nixos-test, uid-range}"
    const [first] = diagnose([message], context())
    expect(first?.cause).toBe('no-matching-builder')
    expect(firstLine(first)).toBe('No builder can build kvm-test: it needs x86_64-linux with features {kvm}.')
  })

  it('Nix 2.34+: `Reason: platform mismatch` (with local builds disabled)', () => {
    const message =
      `error: Cannot build '${DRV}'.\n       Reason: local builds are disabled (max-jobs = 0)\n` +
      "       Hint: set 'max-jobs' to a non-zero value to enable local builds, or configure remote builders via 'builders'\n" +
      "       Reason: platform mismatch\n       Required system: 'riscv64-linux'\n       Current system: 'x86_64-linux'"
    const [first] = diagnose([message], context())
    expect(first?.cause).toBe('no-matching-builder')
    expect(firstLine(first)).toBe('No builder can build kvm-test: it needs riscv64-linux with features {}.')
  })

  it('Nix 2.34+: `Reason: missing system features`', () => {
    const message =
      `error: Cannot build '${DRV}'.\n       Reason: missing system features\n` +
      '       Required features: {benchmark, kvm}\n       Available features: {big-parallel}'
    const [first] = diagnose([message], context())
    expect(firstLine(first)).toBe(
      "No builder can build kvm-test: it needs the runner's system with features {benchmark, kvm}."
    )
    expect(first?.message).toContain(
      `- ${LABEL_1} offers x86_64-linux with features {big-parallel}: lacks benchmark, kvm`
    )
  })

  it("Nix ≤ 2.29 and Lix (with its Hint): `a '…' with features {…} is required to build '…', but I am a …`", () => {
    const nix = `error: a 'aarch64-linux' with features {} is required to build '${DRV}', but I am a 'x86_64-linux' with features {benchmark, big-parallel, kvm, nixos-test}`
    const lix = `${nix}\n       \n       Hint: the failing derivation has allowSubstitutes set to false, forcing it to be built rather than substituted.`
    for (const message of [nix, lix]) {
      const [first] = diagnose([message], context())
      expect(first?.cause).toBe('no-matching-builder')
      expect(first?.message).toContain(
        `- ${LABEL_2} offers aarch64-linux with features {benchmark (mandatory)}: only takes derivations requiring benchmark`
      )
    }
  })

  const offeredByBuilder1 =
    `Failed to find a machine for remote build!\nderivation: ${DRV_BASE}\n` +
    'required (system, features): (x86_64-linux, [])\n1 available machines:\n' +
    '(systems, maxjobs, supportedFeatures, mandatoryFeatures)\n([x86_64-linux], 1, [big-parallel], [])'

  it('says a builder offers what is needed, when one does but Nix did not use it', () => {
    const [first] = diagnose([offeredByBuilder1], context())
    expect(first?.cause).toBe('no-matching-builder')
    expect(firstLine(first)).toBe(
      `No builder took kvm-test, although ${LABEL_1} offers what it needs (x86_64-linux with features {}).`
    )
  })

  it('leaves it to the unreachable builder that explains it', () => {
    const unreachable = `cannot build on '${URI_1}': error: failed to start SSH connection to 'nixbuilder@nix-offload-a1b2c3-1'`
    expect(causes(diagnose([unreachable, offeredByBuilder1], context()))).toEqual(['builder-unreachable'])
  })
})

describe('no-local-slot', () => {
  it.each([
    [
      'Nix 2.8–2.20',
      "error: unable to start any build; either increase '--max-jobs' or enable remote builds.\n       https://nixos.org/manual/nix/stable/advanced-topics/distributed-builds.html"
    ],
    [
      'Nix 2.21+',
      "error: Unable to start any build; either increase '--max-jobs' or enable remote builds.\n       \n       For more information run 'man nix.conf' and search for '/machines'."
    ],
    [
      'Nix 2.21–2.29 (an indented raw string)',
      "error:\n                           Unable to start any build;\n                           either increase '--max-jobs' or enable remote builds.\n\n                           For more information run 'man nix.conf' and search for '/machines'."
    ],
    [
      'Lix',
      "error: unable to start any build; either set '--max-jobs' to a non-zero value or enable remote builds.\n       https://docs.lix.systems/manual/lix/stable/advanced-topics/distributed-builds.html"
    ],
    [
      'Nix 2.34+, with no `Failed to find a machine` or `cannot build on` before it',
      `error: Cannot build '${DRV}'.\n       Reason: local builds are disabled (max-jobs = 0)\n       Hint: set 'max-jobs' to a non-zero value to enable local builds, or configure remote builders via 'builders'`
    ]
  ])('%s: Nix saw no builders although the action configured some → the trust fix', (_v, message) => {
    const [first] = diagnose([message], context())
    expect(first?.cause).toBe('no-local-slot')
    expect(firstLine(first)).toContain('Nix saw no builders')
    expect(first?.message).toContain('`trusted-users = root runner`')
  })

  it.each([
    [
      'Nix 2.8–2.20',
      'error: unable to start any build; remote machines may not have all required system features.\n       https://nixos.org/manual/nix/stable/advanced-topics/distributed-builds.html'
    ],
    [
      'Nix 2.21+',
      "error: Unable to start any build; remote machines may not have all required system features.\n       \n       For more information run 'man nix.conf' and search for '/machines'."
    ],
    [
      'Nix 2.21–2.29 (an indented raw string)',
      "error:\n                           Unable to start any build;\n                           remote machines may not have all required system features.\n\n                           For more information run 'man nix.conf' and search for '/machines'."
    ]
  ])('%s: builders seen but none accepted', (_v, message) => {
    const [first] = diagnose([message], context())
    expect(first?.cause).toBe('no-local-slot')
    expect(firstLine(first)).toContain('no builder accepted')
  })

  it('Nix 2.34+: builders seen (a `cannot build on` before it) but none accepted', () => {
    const diagnoses = diagnose(
      [
        `cannot build on '${URI_2}': error: failed to start SSH connection to 'nix-offload-a1b2c3-2'`,
        `error: Cannot build '${DRV}'.\n       Reason: local builds are disabled (max-jobs = 0)\n       Hint: set 'max-jobs' to a non-zero value to enable local builds, or configure remote builders via 'builders'`
      ],
      context()
    )
    expect(causes(diagnoses)).toEqual(['builder-unreachable', 'no-local-slot'])
    expect(firstLine(diagnoses[1])).toBe(
      'No build slot for kvm-test: no builder accepted it, and --max-jobs 0 (`local-jobs`) forbids building on the runner.'
    )
  })
})

describe('builder-user-untrusted: an unsigned input built on the runner (Nix 2.16+)', () => {
  const input = '/nix/store/wicp3r54kq51c09sanx7n05d3ifw0bhx-lab-input-1'
  const refused = `error: cannot add path '${input}' because it lacks a signature by a trusted key`
  const failed = `error: Cannot build '${DRV}'.\n       Reason: builder failed with exit code 1.`

  it('names the builder the path was copied to, the untrusted user and both fixes', () => {
    const [first, ...rest] = diagnose(
      [refused, failed],
      context({ copiedTo: path => (path === input ? URI_1 : undefined) })
    )
    expect(rest).toEqual([])
    expect(first?.cause).toBe('builder-user-untrusted')
    expect(first?.machine).toBe(URI_1)
    expect(first?.drvPath).toBe(DRV)
    expect(firstLine(first)).toBe(
      `Builder ${LABEL_1} refused lab-input-1, a path built on the runner: its Nix does not trust the SSH user ` +
        'nixbuilder, and takes paths built elsewhere only from a trusted user or signed by a key it trusts.'
    )
    expect(first?.message.split('\n')[1]).toBe(
      'Fix: on the builder, add "trusted-users = nixbuilder" to /etc/nix/nix.conf (NixOS: nix.settings.trusted-users) ' +
        'and restart its nix-daemon; or have the builder build those inputs too: `local-jobs: 0`, and no earlier step ' +
        'that builds them on the runner.'
    )
  })

  it('without a copy naming a host (Nix 2.26 logs `ssh-ng://` alone), takes the builder of the derivation that failed', () => {
    const [first] = diagnose(
      [refused, `error: builder for '${DRV}' failed with exit code 1`],
      context({ copiedTo: () => 'ssh-ng://', machineOf: drv => (drv === DRV ? URI_2 : undefined) })
    )
    expect(first?.machine).toBe(URI_2)
    expect(firstLine(first)).toContain(`Builder ${LABEL_2} refused lab-input-1`)
    expect(first?.message).toContain('"trusted-users = root"')
  })

  it('falls back to the last remote build, and says "a builder" when the log shows none', () => {
    const last = diagnose([refused], context({ lastRemoteBuild: () => ({ drvPath: DRV, machine: URI_1 }) }))
    expect(firstLine(last[0])).toContain(`Builder ${LABEL_1} refused`)
    const none = diagnose([refused], context())
    expect(none[0]?.cause).toBe('builder-user-untrusted')
    expect(firstLine(none[0])).toMatch(/^A builder refused lab-input-1, .* the SSH user, and/)
  })

  it("is not a builder's refusal when the derivation was built on the runner", () => {
    expect(diagnose([refused, failed], context({ machineOf: () => '' }))).toEqual([])
  })
})

describe('untrusted-settings-ignored', () => {
  it.each([
    [
      'Nix 2.22+',
      "warning: ignoring the client-specified setting 'builders', because it is a restricted setting and you are not a trusted user"
    ],
    [
      'Lix',
      "warning: Ignoring the client-specified setting 'builders', because it is a restricted setting and you are not a trusted user"
    ]
  ])('%s', (_v, message) => {
    const [first] = diagnose([message], context())
    expect(first?.cause).toBe('untrusted-settings-ignored')
    expect(first?.severity).toBe('warning')
    expect(firstLine(first)).toBe(
      "The nix-daemon ignored the setting 'builders' because runner is not a trusted user."
    )
    expect(first?.message).toContain('`trusted-users = root runner`')
  })
})

describe('the real Nix 2.8 logs', () => {
  const labA: BuilderOffer = {
    ...BUILDER_1,
    storeUri: 'ssh-ng://nixbuilder@labA',
    label: 'nixbuilder@127.0.0.1:2201'
  }
  const labAbad: BuilderOffer = { ...labA, storeUri: 'ssh-ng://nixbuilder@labAbad' }

  it('host-key-mismatch: the builder is unreachable, then nothing could build', () => {
    const diagnoses = diagnose(
      fixtureErrors('host-key-mismatch-nix-2.8.log'),
      context({ builders: [labAbad] })
    )
    expect(causes(diagnoses)).toEqual(['builder-unreachable', 'no-local-slot'])
    expect(diagnoses[0]?.machine).toBe('ssh-ng://nixbuilder@labAbad')
    expect(firstLine(diagnoses[0])).toContain('Builder nixbuilder@127.0.0.1:2201 is unreachable')
    expect(firstLine(diagnoses[0])).toContain('unexpected end-of-file')
  })

  it('remote-build-fails: the derivation failed on the builder', () => {
    const drv = '/nix/store/zsdq1lk5wfch6jy1k3j523lagya65j9y-lab-check-110815869.drv'
    const diagnoses = diagnose(fixtureErrors('remote-build-fails-nix-2.8.log'), context({ builders: [labA] }))
    expect(causes(diagnoses)).toEqual(['build-failed-on-builder'])
    expect(diagnoses[0]?.drvPath).toBe(drv)
    expect(diagnoses[0]?.machine).toBe('ssh-ng://nixbuilder@labA')
    expect(firstLine(diagnoses[0])).toBe(
      'Derivation lab-check-110815869 failed with exit code 3 on builder nixbuilder@127.0.0.1:2201.'
    )
    expect(diagnoses[0]?.message).toContain('> failing 110815869')
  })

  it('untrusted-user: Nix 2.8 dropped the builders silently', () => {
    const diagnoses = diagnose(fixtureErrors('untrusted-user-nix-2.8.log'), context({ builders: [labA] }))
    expect(causes(diagnoses)).toEqual(['no-local-slot'])
    expect(diagnoses[0]?.message).toContain('runner is not a trusted user')
  })

  /** Warnings too (level ≤ 1), as src/nix/build.ts keeps them, and the ledger's view of the derivation. */
  function fixtureContext(
    fixture: string,
    builders: BuilderOffer[]
  ): { messages: string[]; ctx: DiagnosisContext } {
    const text = readFixture(fixture)
    const messages = text
      .split('\n')
      .map(parseNixLine)
      .flatMap(event => (event?.action === 'msg' && event.level <= 1 ? [stripAnsi(event.msg)] : []))
    const drv = /"fields":\["(\/nix\/store\/[^"]+\.drv)","ssh-ng:\/\/[^"]+"/.exec(text)?.[1]
    const machine = /"fields":\["\/nix\/store\/[^"]+\.drv","(ssh-ng:\/\/[^"]+)"/.exec(text)?.[1]
    const ctx = context({
      builders,
      machineOf: path => (path === drv ? machine : undefined),
      lastRemoteBuild: () =>
        drv === undefined || machine === undefined ? undefined : { drvPath: drv, machine }
    })
    return { messages, ctx }
  }

  it('ifd-remote-store (2.34): an import-from-derivation output built in the builder store, refused back', () => {
    const { messages, ctx } = fixtureContext('ifd-remote-store-nix-2.34.log', [labA])
    const inStore = diagnose(messages, { ...ctx, buildStore: labA.storeUri })
    expect(inStore[0]?.cause).toBe('unsigned-from-builder-store')
    expect(firstLine(inStore[0])).toMatch(
      /^Evaluation needs rs-ifd-\d+, which was built in the store of builder nixbuilder@127\.0\.0\.1:2201 /
    )
    expect(inStore[0]?.message).toContain("'strategy: hook'")
    // With the build hook the same wording is the builder refusing an input: the rule applies only to remote-store.
    expect(diagnose(messages, ctx)[0]?.cause).toBe('builder-user-untrusted')
  })

  it('builder-store-full: with remote-store, no space left means the builder store', () => {
    const messages = [
      "error: builder for '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-big.drv' failed with exit code 1;\n       last 1 log lines:\n       > head: error writing 'standard output': No space left on device"
    ]
    const inStore = diagnose(messages, context({ builders: [labA], buildStore: labA.storeUri }))
    expect(inStore[0]?.cause).toBe('builder-store-full')
    expect(firstLine(inStore[0])).toBe(
      'The store of builder nixbuilder@127.0.0.1:2201 is full: the build runs there (strategy remote-store), and it ran out of space.'
    )
    // With the hook the same text is the derivation's own failure on a builder.
    expect(diagnose(messages, context({ builders: [labA] })).map(d => d.cause)).not.toContain(
      'builder-store-full'
    )
  })

  it('copy-back-failed: the remote-store build worked, bringing its outputs back did not', () => {
    const diagnoses = diagnose(
      [
        "error: copying the outputs back from 'ssh-ng://nixbuilder@labA' failed: error: writing to file: No space left on device"
      ],
      context({ builders: [labA] })
    )
    expect(diagnoses[0]?.cause).toBe('copy-back-failed')
    expect(firstLine(diagnoses[0])).toContain(
      'builder nixbuilder@127.0.0.1:2201 succeeded, but copying its outputs back'
    )
    expect(diagnoses[0]?.message).toContain("'copy-back: false'")
  })

  it('copy-back-failed: a reason that reads like another cause is still the copy back that failed', () => {
    // The runner's store refused the unsigned outputs (runner user untrusted when the copy ran; seen on 2.26 and
    // 2.34 in the lab), or its disk was full: not import-from-derivation, and not the builder's store.
    for (const reason of [
      "error: cannot add path '/nix/store/8w2f4h0gq3x3yq7s6k0i0c4p1d9ls5ia-nix-offload-test-ee322c044a53' because it lacks a signature by a trusted key",
      'error: writing to file: No space left on device'
    ]) {
      const diagnoses = diagnose(
        [`error: copying the outputs back from 'ssh-ng://nixbuilder@labA' failed: ${reason}`],
        context({ builders: [labA], buildStore: labA.storeUri })
      )
      expect(diagnoses.map(d => d.cause)).toEqual(['copy-back-failed'])
    }
  })

  it('sshd-killed-mid-build: the connection dropped while that derivation built on that builder', () => {
    const { messages, ctx } = fixtureContext('sshd-killed-mid-build-nix-2.8.log', [labA])
    const diagnoses = diagnose(messages, ctx)
    expect(diagnoses[0]?.cause).toBe('connection-dropped')
    expect(firstLine(diagnoses[0])).toMatch(
      /^Lost the connection to builder nixbuilder@127\.0\.0\.1:2201 while building lab-check-kill\d+ \(/
    )
  })

  it('sshd-frozen (cut by ServerAlive): no derivation named, so the last remote build is the one', () => {
    const { messages, ctx } = fixtureContext('sshd-frozen-mid-build-keepalive-nix-2.8.log', [
      { ...labA, storeUri: 'ssh-ng://nixbuilder@labAka' }
    ])
    expect(messages.join('\n')).not.toContain('.drv')
    const diagnoses = diagnose(messages, ctx)
    expect(diagnoses[0]?.cause).toBe('connection-dropped')
    expect(firstLine(diagnoses[0])).toMatch(
      /^Lost the connection to builder nixbuilder@127\.0\.0\.1:2201 while building \S+/
    )
    expect(diagnoses[0]?.drvPath).toMatch(/\.drv$/)
  })

  it('builder-user-untrusted: the builder refused to build, with the trusted-users fix', () => {
    const { messages, ctx } = fixtureContext('builder-user-untrusted-nix-2.8.log', [labA])
    const diagnoses = diagnose(messages, ctx)
    expect(diagnoses[0]?.cause).toBe('builder-user-untrusted')
    expect(firstLine(diagnoses[0])).toContain('Builder nixbuilder@127.0.0.1:2201 refused to build')
    expect(diagnoses[0]?.message).toContain('trusted-users = nixbuilder')
  })

  it('no-matching-builder: what the derivation needs and what the builder offers', () => {
    const { messages, ctx } = fixtureContext('no-matching-builder-nix-2.8.log', [
      { ...labA, supportedFeatures: ['benchmark', 'lab-a'] }
    ])
    const diagnoses = diagnose(messages, ctx)
    expect(diagnoses[0]?.cause).toBe('no-matching-builder')
    expect(firstLine(diagnoses[0])).toMatch(
      /^No builder can build lab-check-nm\d+: it needs x86_64-linux with features \{lab-c\}\.$/
    )
    expect(diagnoses[0]?.message).toContain(
      'nixbuilder@127.0.0.1:2201 offers x86_64-linux with features {benchmark, lab-a}'
    )
  })

  it.each([
    ['builder-down-nix-2.8.log', 'ssh-ng://nixbuilder@labA'],
    ['key-refused-nix-2.8.log', 'ssh-ng://nixbuilder@labAkey'],
    ['no-nix-on-path-nix-2.8.log', 'ssh-ng://nixnopath@labA']
  ])('%s: the builder is unreachable (only the daemon log says why)', (fixture, uri) => {
    const { messages, ctx } = fixtureContext(fixture, [{ ...labA, storeUri: uri }])
    const diagnoses = diagnose(messages, ctx)
    expect(diagnoses[0]?.cause).toBe('builder-unreachable')
    expect(diagnoses[0]?.machine).toBe(uri)
    expect(firstLine(diagnoses[0])).toContain('Builder nixbuilder@127.0.0.1:2201 is unreachable')
  })

  it('successful builds: nothing to say', () => {
    expect(diagnose(fixtureErrors('remote-build-nix-2.8.log'), context())).toEqual([])
    expect(diagnose(fixtureErrors('local-build-nix-2.8.log'), context())).toEqual([])
  })
})

describe.each([
  ['2.26', 2213],
  ['2.34', 2223]
])('the real Nix %s logs (runner and builder on that version)', (version, port) => {
  const builderLabel = `nixbuilder@127.0.0.1:${port}`
  const labC = offerWith({
    storeUri: 'ssh-ng://nixbuilder@labC',
    label: builderLabel,
    supportedFeatures: ['benchmark', 'lab-c']
  })

  /** The log read as the action reads it (src/nix/ledger.ts), and the context src/offload.ts gives the diagnosis. */
  function read(
    name: string,
    builders: BuilderOffer[] = [labC]
  ): { messages: string[]; ctx: DiagnosisContext } {
    let tick = 0
    const reader = new NixLogReader(
      () => undefined,
      () => ++tick
    )
    for (const line of fixtureLines(`${name}-nix-${version}.log`)) {
      reader.readLine(line)
    }
    const builds = reader.ledger.records()
    const copies = reader.copyLedger.records()
    const ctx = context({
      builders,
      lastLogLines: drv => reader.lastLines.get(drv) ?? [],
      machineOf: drv => builds.find(build => build.drvPath === drv)?.machine,
      lastRemoteBuild: () => {
        const remote = builds.filter(build => build.machine !== '').sort((x, y) => y.start - x.start)[0]
        return remote === undefined ? undefined : { drvPath: remote.drvPath, machine: remote.machine }
      },
      copiedTo: path => copies.filter(copy => copy.path === path && copy.to !== 'local').at(-1)?.to
    })
    return { messages: reader.messages, ctx }
  }

  it('remote-build: nothing to say', () => {
    const { messages, ctx } = read('remote-build')
    expect(diagnose(messages, ctx)).toEqual([])
  })

  it.each([
    ['host-key-mismatch', 'ssh-ng://nixbuilder@labCbad'],
    ['key-refused', 'ssh-ng://nixbuilder@labCkey'],
    ['builder-down', 'ssh-ng://nixbuilder@labC']
  ])('%s: the builder is unreachable, then nothing could build it', (fixture, uri) => {
    const { messages, ctx } = read(fixture, [{ ...labC, storeUri: uri }])
    // Only the daemon's log says which it was (ssh's stderr): Nix's own words are the same for all three.
    expect(messages[0]).toMatch(/failed to start SSH connection to '(nixbuilder@)?labC\w*'$/)
    const diagnoses = diagnose(messages, ctx)
    expect(causes(diagnoses)).toEqual(['builder-unreachable', 'no-local-slot'])
    expect(diagnoses[0]?.machine).toBe(uri)
    expect(firstLine(diagnoses[0])).toContain(`Builder ${builderLabel} is unreachable`)
    expect(firstLine(diagnoses[1])).toMatch(/^No build slot for .*: no builder accepted/)
  })

  it('remote-build-fails: the derivation failed on the builder, with its log', () => {
    const { messages, ctx } = read('remote-build-fails')
    const diagnoses = diagnose(messages, ctx)
    expect(causes(diagnoses)).toEqual(['build-failed-on-builder'])
    expect(diagnoses[0]?.machine).toBe('ssh-ng://nixbuilder@labC')
    expect(firstLine(diagnoses[0])).toMatch(
      new RegExp(`^Derivation lab-check-rf\\d+ failed with exit code 3 on builder ${builderLabel}\\.$`)
    )
    expect(diagnoses[0]?.message).toMatch(/> failing rf\d+/)
  })

  it('no-matching-builder (--max-jobs 0): what it needs, what the builder offers, and no local slot', () => {
    const { messages, ctx } = read('no-matching-builder')
    if (version === '2.34') {
      expect(messages.join('\n')).toContain('Reason: local builds are disabled (max-jobs = 0)\n       Hint: ')
      expect(messages.join('\n')).toContain(
        'Reason: missing system features\n       Required features: {lab-x}'
      )
    }
    const diagnoses = diagnose(messages, ctx)
    expect(causes(diagnoses)).toEqual(['no-matching-builder'])
    expect(firstLine(diagnoses[0])).toMatch(
      /^No builder can build lab-check-nm\d+: it needs x86_64-linux with features \{lab-x\}\.$/
    )
    expect(diagnoses[0]?.message).toContain(
      `- ${builderLabel} offers x86_64-linux with features {benchmark, lab-c}: lacks lab-x (input 'host')`
    )
    expect(diagnoses[0]?.message).toContain(
      '--max-jobs 0 (`local-jobs`) also keeps Nix from building it on the runner.'
    )
  })

  it('no-matching-builder-local-jobs (--max-jobs 1): the runner lacks the feature too', () => {
    const { messages, ctx } = read('no-matching-builder-local-jobs')
    const reason =
      version === '2.34' ? 'Reason: missing system features' : "a 'x86_64-linux' with features {lab-x}"
    expect(messages.join('\n')).toContain(reason)
    const diagnoses = diagnose(messages, ctx)
    expect(causes(diagnoses)).toEqual(['no-matching-builder'])
    expect(firstLine(diagnoses[0])).toMatch(
      /^No builder can build lab-check-nl\d+: it needs x86_64-linux with features \{lab-x\}\.$/
    )
    expect(diagnoses[0]?.message).not.toContain('--max-jobs 0')
  })

  it('platform-mismatch (--max-jobs 1): nobody builds aarch64-linux', () => {
    const { messages, ctx } = read('platform-mismatch')
    const reason =
      version === '2.34'
        ? "Reason: platform mismatch\n       Required system: 'aarch64-linux'"
        : "a 'aarch64-linux'"
    expect(messages.join('\n')).toContain(reason)
    const diagnoses = diagnose(messages, ctx)
    expect(causes(diagnoses)).toEqual(['no-matching-builder'])
    expect(firstLine(diagnoses[0])).toMatch(
      /^No builder can build lab-check-pm\d+: it needs aarch64-linux with features \{\}\.$/
    )
    expect(diagnoses[0]?.message).toContain(
      `- ${builderLabel} offers x86_64-linux with features {benchmark, lab-c}: no aarch64-linux`
    )
  })

  it('no-builders-max-jobs-0: Nix saw no builder; with builders configured, the daemon dropped them', () => {
    const { messages, ctx } = read('no-builders-max-jobs-0')
    const [dropped] = diagnose(messages, ctx)
    expect(dropped?.cause).toBe('no-local-slot')
    expect(firstLine(dropped)).toContain('Nix saw no builders')
    expect(dropped?.message).toContain('`trusted-users = root runner`')
    const [none] = diagnose(messages, { ...ctx, builders: [] })
    expect(firstLine(none)).toMatch(
      /: no builder is configured and --max-jobs 0 forbids building on the runner\.$/
    )
  })

  it('builder-user-untrusted-local-input: the builder refused an unsigned input built on the runner', () => {
    const { messages, ctx } = read('builder-user-untrusted-local-input')
    expect(messages[0]).toMatch(
      /^error: cannot add path '\/nix\/store\/\w+-lab-input-bu\d+' because it lacks a signature/
    )
    const diagnoses = diagnose(messages, ctx)
    expect(causes(diagnoses)).toEqual(['builder-user-untrusted'])
    expect(diagnoses[0]?.machine).toBe('ssh-ng://nixbuilder@labC')
    expect(diagnoses[0]?.drvPath).toMatch(/-lab-check-bu\d+\.drv$/)
    expect(firstLine(diagnoses[0])).toMatch(
      new RegExp(
        `^Builder ${builderLabel} refused lab-input-bu\\d+, a path built on the runner: its Nix does not trust the SSH ` +
          'user nixbuilder, and takes paths built elsewhere only from a trusted user or signed by a key it trusts\\.$'
      )
    )
    expect(diagnoses[0]?.message).toContain('"trusted-users = nixbuilder"')
    expect(diagnoses[0]?.message).toContain('`local-jobs: 0`')
  })
})

describe('diagnose as a whole', () => {
  const unreachable = `cannot build on '${URI_1}': error: failed to start SSH connection to 'nixbuilder@nix-offload-a1b2c3-1'`

  it('gives one diagnosis per cause, derivation and builder', () => {
    expect(
      diagnose([unreachable, unreachable], context()).filter(d => d.cause === 'builder-unreachable')
    ).toHaveLength(1)
  })

  it('warns that Nix built elsewhere when a builder was skipped but nothing failed for want of one', () => {
    const diagnoses = diagnose([unreachable], context())
    expect(causes(diagnoses)).toEqual(['builder-unreachable', 'local-fallback'])
    expect(diagnoses[1]?.severity).toBe('warning')
    expect(firstLine(diagnoses[1])).toContain(`Nix skipped builder ${LABEL_1}`)
  })

  it('puts the derivation that failed first, then the unreachable builder, then warnings', () => {
    const failed = `error: build of '${DRV}' on '${URI_2}' failed: builder for '${DRV}' failed with exit code 2`
    const ignored =
      "warning: ignoring the client-specified setting 'builders-use-substitutes', because it is a restricted setting and you are not a trusted user"
    expect(causes(diagnose([ignored, unreachable, failed], context()))).toEqual([
      'build-failed-on-builder',
      'builder-unreachable',
      'untrusted-settings-ignored',
      'local-fallback'
    ])
  })

  it('orderDiagnoses keeps the message order within a cause', () => {
    const d = (cause: Cause, title: string, severity: 'error' | 'warning' = 'error'): Diagnosis => ({
      cause,
      severity,
      title,
      message: title
    })
    const ordered = orderDiagnoses([
      d('untrusted-settings-ignored', 'u', 'warning'),
      d('no-local-slot', 's'),
      d('builder-unreachable', 'b1'),
      d('builder-unreachable', 'b2'),
      d('connection-dropped', 'c')
    ])
    expect(ordered.map(x => x.title)).toEqual(['c', 'b1', 'b2', 's', 'u'])
  })

  it('returns [] for unknown text and never throws', () => {
    expect(diagnose(['error: attribute "hello" missing', ''], context())).toEqual([])
    fc.assert(
      fc.property(fc.array(fc.string()), messages => {
        expect(Array.isArray(diagnose(messages, context()))).toBe(true)
      })
    )
  })

  it('builderOffer labels a configured builder as user@host:port', () => {
    const offer = builderOffer({
      host: '10.0.0.5',
      port: 22,
      user: 'nixbuilder',
      systems: ['x86_64-linux'],
      supportedFeatures: ['big-parallel'],
      mandatoryFeatures: [],
      origin: "input 'host'",
      pinInput: Input.HostPublicKey,
      storeUri: URI_1
    })
    expect(offer).toEqual(BUILDER_1)
  })
})
