import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { SetupError } from '../../../src/inputs/errors.js'
import {
  builderInstallable,
  buildOnBuilder,
  chooseEvaluatingBuilder,
  type EvaluatingOffer,
  parseArchivePath,
  remoteBuildCommand,
  splitInstallable
} from '../../../src/nix/builder-eval.js'
import { builtOn } from '../../../src/nix/ledger.js'
import { buildLogLine, buildStartLine, stopLine } from '../support/nix-log.js'
import { settingsWith } from '../support/settings.js'

const STORE = 'ssh-ng://nixbuilder@nix-offload-abc123-1'
const SOURCE = '/nix/store/0c6k3vbb8pqyzswrwlpkpyqaxqcfb2jx-source'
const DRV = '/nix/store/5dvfbrk5f9h90g6k9xzs2rkjbwlff0cp-heavy.drv'
const OUT = '/nix/store/5dvfbrk5f9h90g6k9xzs2rkjbwlff0cp-heavy'
const SSH_OPTIONS = '-F /tmp/nix-offload-abc123/ssh_config'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function offer(overrides: Partial<EvaluatingOffer> = {}): EvaluatingOffer {
  return {
    index: 0,
    label: 'nixbuilder@builder:22',
    protocol: 'ssh-ng',
    storeUri: 'ssh-ng://nixbuilder@nix-offload-a1b2c3-1',
    maxJobs: 1,
    systems: ['x86_64-linux'],
    supportedFeatures: [],
    mandatoryFeatures: [],
    ...overrides
  }
}

describe('chooseEvaluatingBuilder', () => {
  const trusted = { acceptsUnsignedPaths: true }

  it('sends every installable to the first ssh-ng builder whose key has a shell', () => {
    const choice = chooseEvaluatingBuilder(settingsWith({ installables: ['.#a', '.#b'] }), trusted, [
      offer({ index: 0, label: 'serve', protocol: 'ssh' }),
      offer({ index: 1, label: 'daemon-only', access: 'nix-daemon' }),
      offer({ index: 2, label: 'shell', access: 'shell' }),
      offer({ index: 3, label: 'later' })
    ])
    expect(choice.strategy).toBe('remote-store')
    expect(choice.routes).toEqual([
      {
        index: 2,
        label: 'shell',
        storeUri: 'ssh-ng://nixbuilder@nix-offload-a1b2c3-1',
        installables: ['.#a', '.#b'],
        derivations: [],
        maxJobs: 1,
        access: 'shell'
      }
    ])
    expect(choice.reason).toContain("'evaluate: builder'")
  })

  it('refuses a key that runs only nix-daemon, naming the input, the builder and both fixes', () => {
    const refuse = (): unknown =>
      chooseEvaluatingBuilder(settingsWith(), trusted, [offer({ label: 'b1', access: 'nix-daemon' })])
    expect(refuse).toThrow(SetupError)
    expect(refuse).toThrow(/^Input 'evaluate: builder' cannot serve this run: .*needs a shell there/)
    expect(refuse).toThrow(/b1 \(its key runs only nix-daemon\)/)
    expect(refuse).toThrow(/Set 'evaluate: runner', or give the key a shell/)
  })

  it('refuses ssh builders, and a runner whose daemon would refuse the outputs (unless copy-back is off)', () => {
    expect(() => chooseEvaluatingBuilder(settingsWith(), trusted, [offer({ protocol: 'ssh' })])).toThrow(
      /speak only Nix's ssh protocol/
    )
    const untrusted = { acceptsUnsignedPaths: false }
    expect(() => chooseEvaluatingBuilder(settingsWith(), untrusted, [offer()])).toThrow(/'copy-back: false'/)
    expect(
      chooseEvaluatingBuilder(settingsWith({ copyBack: false }), untrusted, [offer()]).routes
    ).toHaveLength(1)
  })
})

describe('the installable as the builder names it', () => {
  it('splits at the first #, keeps the attribute and the flake dir, and drops the rest of the reference', () => {
    expect(splitInstallable('.#packages.x86_64-linux.default')).toEqual({
      flake: '.',
      fragment: '#packages.x86_64-linux.default'
    })
    expect(splitInstallable('path:./sub')).toEqual({ flake: 'path:./sub', fragment: '' })
    expect(builderInstallable('.#heavy^dev', SOURCE)).toBe(`${SOURCE}#heavy^dev`)
    expect(builderInstallable('.', SOURCE)).toBe(SOURCE)
    expect(builderInstallable('github:o/r?dir=nix&ref=main#heavy', SOURCE)).toBe(`${SOURCE}?dir=nix#heavy`)
  })

  it("reads the flake's source from nix flake archive --json, and nothing that is not a store path", () => {
    const archived = JSON.stringify({
      path: SOURCE,
      inputs: { nixpkgs: { path: '/nix/store/x-source', inputs: {} } }
    })
    expect(parseArchivePath(archived, '/nix/store')).toBe(SOURCE)
    expect(parseArchivePath('{"path":"/etc/passwd"}', '/nix/store')).toBeUndefined()
    expect(parseArchivePath('warning: dirty', '/nix/store')).toBeUndefined()
  })

  it("runs the builder's own nix, beside remote-program, with the proof's options after the user's", () => {
    expect(
      remoteBuildCommand({
        storeUri: `${STORE}?remote-program=/nix/var/nix/profiles/default/bin/nix-daemon`,
        installables: [`${SOURCE}#heavy`],
        args: ['-L', '--print-out-paths', '--log-format', 'bar'],
        rebuild: true
      })
    ).toBe(
      "'/nix/var/nix/profiles/default/bin/nix' '--extra-experimental-features' 'nix-command flakes' 'build' '-L' " +
        "'--log-format' 'bar' '--log-format' 'internal-json' '--json' '--no-link' '--rebuild' " +
        `'${SOURCE}#heavy'`
    )
  })
})

describe('builtOn', () => {
  it("names a build with no machine in a builder's own log after that builder, and keeps one it handed on", () => {
    const record = { drvPath: DRV, name: 'heavy', start: 1, end: 2, status: 'built' as const, attempts: 1 }
    expect(
      builtOn(STORE, [
        { ...record, machine: '' },
        { ...record, machine: 'ssh://other' }
      ]).map(build => build.machine)
    ).toEqual([STORE, 'ssh://other'])
  })
})

/** Stand-ins for `nix` and `ssh` on PATH: each call's arguments are kept, one file per call, and each answers by what it was asked. */
function fakes(options: { archiveCode?: number; buildCode?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'nix-offload-builder-eval-'))
  dirs.push(dir)
  const now = Math.floor(Date.now() / 1000)
  const log = [buildStartLine(7, DRV, ''), buildLogLine(7, 'heavy is building'), stopLine(7)]
  const derivation = JSON.stringify({
    [DRV]: { system: 'x86_64-linux', env: {}, outputs: { out: { path: OUT } } }
  })
  const info = JSON.stringify([
    { path: OUT, narSize: 64, deriver: DRV, registrationTime: now, ultimate: true }
  ])
  // One file per call, named by its pid: the copy back and the proof's calls run at once.
  const record = (name: string): string => `printf '%s\\n' "$@" > ${dir}/${name}.$$.args\n`
  writeFileSync(
    join(dir, 'nix'),
    `#!/bin/sh\n${record('nix')}case "$*" in\n` +
      `  *"flake archive"*) printf '%s' '{"path":"${SOURCE}","inputs":{}}'; exit ${options.archiveCode ?? 0} ;;\n` +
      `  *"derivation show"*) printf '%s' '${derivation}' ;;\n` +
      'esac\nexit 0\n'
  )
  writeFileSync(
    join(dir, 'ssh'),
    `#!/bin/sh\n${record('ssh')}case "$*" in\n` +
      `  *path-info*) printf '%s' '${info}' ;;\n` +
      `  *) printf '%s\\n' ${log.map(line => `'${line}'`).join(' ')} >&2\n` +
      `     printf '%s' '[{"drvPath":"${DRV}","outputs":{"out":"${OUT}"}}]'; exit ${options.buildCode ?? 0} ;;\n` +
      'esac\n'
  )
  chmodSync(join(dir, 'nix'), 0o755)
  chmodSync(join(dir, 'ssh'), 0o755)
  return {
    env: { PATH: `${dir}:/usr/bin:/bin`, NIX_SSHOPTS: SSH_OPTIONS },
    /** Every call's arguments to `name`, each joined by spaces. */
    calls: (name: string): string[] =>
      readdirSync(dir)
        .filter(file => file.startsWith(`${name}.`) && file.endsWith('.args'))
        .map(file => readFileSync(join(dir, file), 'utf8').trimEnd().split('\n').join(' '))
  }
}

describe('buildOnBuilder', () => {
  const release = { implementation: 'nix' as const, version: '2.34.8' }
  const route = { index: 0, label: 'b1', storeUri: STORE, installables: ['.#heavy'], derivations: [] }

  it('archives the flake, builds it there over ssh, proves it from that store and copies the output back', async () => {
    const run = fakes()
    const outcome = await buildOnBuilder(settingsWith({ installables: ['.#heavy'], evaluate: 'builder' }), {
      release,
      route,
      env: run.env
    })
    expect(outcome.exitCode).toBe(0)
    const nix = run.calls('nix')
    const features = '--extra-experimental-features nix-command flakes'
    expect(nix).toContain(`${features} flake archive --to ${STORE} --json .`)
    expect(nix).toContain(`${features} copy --from ${STORE} --no-check-sigs -- ${OUT}`)
    expect(nix).toContain(`${features} derivation show --store ${STORE} -- ${DRV}`)
    expect(nix).toHaveLength(3)
    expect(run.calls('ssh')).toContain(
      `${SSH_OPTIONS} nixbuilder@nix-offload-abc123-1 ` +
        "'nix' '--extra-experimental-features' 'nix-command flakes' 'build' '--log-format' 'internal-json' '--json' " +
        `'--no-link' '${SOURCE}#heavy'`
    )
    expect(outcome.builds.map(build => [build.drvPath, build.machine, build.status])).toEqual([
      [DRV, STORE, 'built']
    ])
    expect(outcome.outPaths).toEqual([OUT])
    expect(outcome.proofs.get(DRV)).toEqual({ log: true, store: true })
    expect(outcome.copiedBack.get(STORE)).toEqual([OUT])
    expect(outcome.copies).toEqual([])
  })

  it('with copy-back false, leaves the outputs there', async () => {
    const run = fakes()
    const outcome = await buildOnBuilder(settingsWith({ copyBack: false, evaluate: 'builder' }), {
      release,
      route,
      env: run.env
    })
    expect(outcome.exitCode).toBe(0)
    expect(outcome.copiedBack.size).toBe(0)
    expect(run.calls('nix').filter(call => call.includes(' copy '))).toEqual([])
  })

  it('stops before the build when the archive fails, with an error line naming the flake and the builder', async () => {
    const run = fakes({ archiveCode: 1 })
    const outcome = await buildOnBuilder(settingsWith({ evaluate: 'builder' }), {
      release,
      route,
      env: run.env
    })
    expect(outcome.exitCode).toBe(1)
    expect(outcome.messages[0]).toMatch(new RegExp(`^error: sending the flake '\\.' to '${STORE}' failed`))
    expect(run.calls('ssh')).toEqual([])
  })

  it('a failed build there is not proven or copied', async () => {
    const run = fakes({ buildCode: 1 })
    const outcome = await buildOnBuilder(settingsWith({ evaluate: 'builder' }), {
      release,
      route,
      env: run.env
    })
    expect(outcome.exitCode).toBe(1)
    expect(outcome.proofs.size).toBe(0)
    expect(run.calls('nix')).toHaveLength(1)
    expect(run.calls('ssh')).toHaveLength(1)
  })
})
