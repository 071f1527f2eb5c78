import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  BUILDER_NIX,
  HOST_NIX,
  nixAtLeast,
  RUNNER_NIX,
  builder,
  builderCtl as ctlBuilder,
  builderInputs,
  freshDerivation,
  hostPath,
  inStore,
  type Lab,
  loadLab,
  runCommandAs,
  runMain,
  runPost,
  startMainUntil,
  type StepResult,
  visibleLog,
  numberedDerivations,
  firstError
} from './harness.js'
import { derivationInputs, startBuilders, watchFiles, watchMasters } from './setup.js'

const lab: Lab = loadLab()
const a = builder(lab, 'a')
const b = builder(lab, 'b')

async function builderCtl(command: string, name: string): Promise<void> {
  await ctlBuilder(lab, command, name)
}

/**
 * Nothing may be left behind by a step that failed its preflight. Either it failed before the first write, or (no
 * `auto`, no `skip-unhealthy`) it configured the runner beside the preflight and undid that before it ended: the
 * runner is as it was when main ends, and the post step has nothing to undo.
 */
async function expectUntouched(inputs: Record<string, string>): Promise<StepResult> {
  const filesKept = watchFiles(lab)
  const noNewMasters = await watchMasters(lab)
  const main = await runMain(lab, inputs)
  expect(main.code).toBe(1)
  filesKept()
  await noNewMasters()
  const journal = main.state.journal
  if (journal !== undefined) expect(JSON.parse(journal)).toMatchObject({ undo: [] })
  const post = await runPost(lab, main)
  expect(post.code).toBe(0)
  expect(post.stdout).toContain('nothing to undo')
  return main
}

function fingerprintOf(line: string): string {
  return execFileSync('ssh-keygen', ['-lf', '-'], { input: line }).toString().split(' ')[1] ?? ''
}

afterEach(() => startBuilders(lab, ['a', 'b']))

describe('preflight faults, each named in the first error line', () => {
  it('1. builder down: unreachable, with host and port', async () => {
    await builderCtl('stop', 'a')
    const main = await expectUntouched({ ...builderInputs(lab, 'a'), installables: 'drv' })
    expect(firstError(main)).toContain(
      `Builder nixbuilder@127.0.0.1:${a.port} is unreachable: connection refused on 127.0.0.1 port ${a.port}`
    )
    expect(main.outputs['builders-healthy']).toBe('0')
    const report = JSON.parse(readFileSync(hostPath(lab, main.outputs.report ?? ''), 'utf8')) as {
      preflight: { cause: string }[]
    }
    expect(report.preflight[0]?.cause).toBe('unreachable')
    expect(main.summary).toContain('❌ `unreachable`')
  })

  it('2. wrong pinned host key: both fingerprints', async () => {
    const main = await expectUntouched({ ...builderInputs(lab, 'a'), 'host-public-key': b.hostPublicKey })
    const error = firstError(main)
    expect(error).toContain(
      `Builder nixbuilder@127.0.0.1:${a.port} presented a host key that is not the pinned one`
    )
    expect(error).toContain(`it presented ssh-ed25519 ${fingerprintOf(a.hostPublicKey)}`)
    expect(error).toContain(`'host-public-key' pins ${fingerprintOf(b.hostPublicKey)}`)
    // No `auto`: the runner was configured beside the preflight, then undone (expectUntouched), and later steps
    // were never told about the builder.
    expect(main.stdout).toContain('Configuring for root')
    expect(main.stdout).toContain('Undid the configuration made while the preflight ran')
    expect(main.env.NIX_CONFIG).toBeUndefined()
  })

  it('3. client key not authorised: the key type and the public half to add', async () => {
    const main = await expectUntouched({
      ...builderInputs(lab, 'a'),
      'ssh-private-key': readFileSync(lab.otherKey, 'utf8')
    })
    const error = firstError(main)
    expect(error).toContain(
      `Builder nixbuilder@127.0.0.1:${a.port} refused the client key (ssh-ed25519) for user nixbuilder`
    )
    expect(error).toContain(readFileSync(`${lab.otherKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' '))
  })

  /** Runs `fn` with builder a's Nix not trusting its ssh user, then trusts it again. */
  async function withUntrustedBuilderUser(fn: () => Promise<void>): Promise<void> {
    const conf = readFileSync(a.nixConf, 'utf8')
    writeFileSync(a.nixConf, conf.replace(/^trusted-users = .*$/m, 'trusted-users = root'))
    try {
      await builderCtl('restart', 'a')
      await fn()
    } finally {
      writeFileSync(a.nixConf, conf)
      await builderCtl('restart', 'a')
    }
  }

  // From Nix 2.16 on both ends, an untrusted builder user builds what it is sent (build-remote.cc trustedOrLegacy).
  const untrustedBuilds = nixAtLeast(RUNNER_NIX, '2.16') && nixAtLeast(BUILDER_NIX, '2.16')

  it.skipIf(untrustedBuilds)(
    '5. builder user not trusted, and the runner or the builder is older than Nix 2.16: the trusted-users fix',
    async () => {
      await withUntrustedBuilderUser(async () => {
        const main = await expectUntouched({ ...builderInputs(lab, 'a'), installables: 'drv' })
        const error = firstError(main)
        expect(error).toMatch(
          new RegExp(
            `Builder nixbuilder@127\\.0\\.0\\.1:${a.port}: its Nix [\\d.]+ does not trust user nixbuilder`
          )
        )
        if (nixAtLeast(RUNNER_NIX, '2.16')) expect(error).toContain('its Nix is older than 2.16')
        else
          expect(error).toMatch(
            new RegExp(`the runner's Nix ${RUNNER_NIX.replaceAll('.', '\\.')}\\.\\d+ is older than 2\\.16`)
          )
        expect(error).toContain('trusted-users = nixbuilder')
      })
    }
  )

  it.runIf(untrustedBuilds)(
    '5. builder user not trusted, both ends on Nix 2.16 or later: a derivation with no runner-built input builds there',
    async () => {
      await withUntrustedBuilderUser(async () => {
        const drv = freshDerivation(lab)
        const main = await runMain(lab, derivationInputs(lab, drv))
        expect(main.code, visibleLog(main)).toBe(0)
        expect(main.outputs).toMatchObject({ confirmed: 'true', 'remote-builds': '1' })
        expect(visibleLog(main)).toContain('user not trusted')
        expect((await runPost(lab, main)).code).toBe(0)
      })
    }
  )

  it.runIf(untrustedBuilds)(
    '5b. builder user not trusted, an input built on the runner: a preflight warning, then the cause and the fix',
    async () => {
      await withUntrustedBuilderUser(async () => {
        const drv = freshDerivation(lab, { localInput: true })
        const main = await runMain(lab, {
          ...builderInputs(lab, 'a'),
          'local-jobs': '1',
          args: drv.args,
          installables: 'drv'
        })
        expect(main.code).toBe(1)
        const log = visibleLog(main)
        expect(log).toMatch(/::warning title=nix-offload%3A nixbuilder@127\.0\.0\.1%3A\d+ user not trusted::/)
        const error = firstError(main)
        expect(error, log).toContain(`Builder nixbuilder@127.0.0.1:${a.port} refused nix-offload-test-input-`)
        expect(error).toContain('a path built on the runner')
        expect(log).toContain('trusted-users = nixbuilder')
        expect((await runPost(lab, main)).code).toBe(0)
      })
    }
  )

  it('7. no Nix on the builder user’s non-interactive PATH: how to make it reachable', async () => {
    const main = await expectUntouched({ ...builderInputs(lab, 'a'), user: 'nixnopath', installables: 'drv' })
    const error = firstError(main)
    expect(error).toContain(
      `Builder nixnopath@127.0.0.1:${a.port}: nix-daemon is not on the non-interactive PATH of nixnopath`
    )
    expect(error).toContain('/nix/var/nix/profiles/default/bin')
  })

  it('pins nothing without host-public-key: prints the line to paste and its fingerprint', async () => {
    const main = await expectUntouched({ ...builderInputs(lab, 'a'), 'host-public-key': '' })
    const log = visibleLog(main)
    expect(firstError(main)).toMatch(
      /^::error[^:]*::Input 'host-public-key': builder nixbuilder@127\.0\.0\.1:22\d1 has no pinned host key/
    )
    expect(log).toContain(`It presents ssh-ed25519 ${fingerprintOf(a.hostPublicKey)}`)
    expect(log).toContain(`%0A${a.hostPublicKey}`)
  })
})

describe('build faults', () => {
  it('6. a derivation needing a feature no builder offers: what it needs and what each builder offers', async () => {
    const drv = freshDerivation(lab, { features: ['lab-c'] })
    const filesKept = watchFiles(lab)
    const main = await runMain(lab, {
      ...builderInputs(lab, 'a'),
      'supported-features': 'benchmark',
      args: drv.args,
      installables: 'drv'
    })
    expect(main.code).toBe(1)
    const error = firstError(main)
    expect(error, visibleLog(main)).toMatch(/no builder/i)
    expect(error).toContain('lab-c')
    expect(error).toContain(`nixbuilder@127.0.0.1:${a.port}`)
    expect(error).toContain('benchmark')
    expect(error).not.toContain('unexpected end-of-file')
    await runPost(lab, main)
    filesKept()
  })
})

describe('a builder lost in the middle of a build', () => {
  it('8. sshd killed mid-build: a dropped connection for that derivation, no hang, and the post step restores', async () => {
    const filesKept = watchFiles(lab)
    // Far longer than the test may take: if the action waited for the build, the test would time out.
    const drv = freshDerivation(lab, { seconds: 600 })
    const { done } = await startMainUntil(lab, derivationInputs(lab, drv), `${drv.name}> building`)
    await builderCtl('kill-sshd', 'a')
    const main = await done
    await runCommandAs(lab, 'root', ['pkill', '-KILL', '-f', drv.nonce])
    expect(main.code).toBe(1)
    const error = firstError(main)
    expect(error, visibleLog(main)).toMatch(/connection|dropped|lost/i)
    expect(error).toContain(drv.name)
    expect(error).toContain(`nixbuilder@127.0.0.1:${a.port}`)
    const post = await runPost(lab, main)
    expect(post.code).toBe(0)
    filesKept()
  })
})

describe('a builder whose Nix stops answering', () => {
  // One version pair only, the host's own Nix on both ends: the test waits out the preflight's 30 s. With the hook,
  // root's configuration made beside the preflight has a store check of its own hanging too: the verdict stops it.
  it.runIf(RUNNER_NIX === HOST_NIX && BUILDER_NIX === HOST_NIX).each(['hook', 'remote-store'])(
    'the preflight asks its store and is bounded (strategy %s): the step fails within the minute, naming the builder and what hung',
    async strategy => {
      const daemonPid = readFileSync(join(dirname(a.sshdLog), 'nix-daemon.pid'), 'utf8').trim()
      execFileSync('kill', ['-STOP', daemonPid])
      try {
        const started = Date.now()
        const main = await runMain(lab, { ...builderInputs(lab, 'a'), strategy, installables: 'drv' })
        const seconds = (Date.now() - started) / 1000
        expect(main.code).toBe(1)
        expect(seconds).toBeLessThan(60)
        const stepError = visibleLog(main)
          .split('\n')
          .find(line => line.startsWith('::error'))
        expect(stepError).toContain(
          `Builder nixbuilder@127.0.0.1:${a.port}: its Nix store does not answer: \`nix store ping\` as nixbuilder ` +
            'there: no answer within 30 s.'
        )
        expect((await runPost(lab, main)).code).toBe(0)
      } finally {
        execFileSync('kill', ['-CONT', daemonPid])
      }
    },
    120_000
  )
})

describe('a builder that changes after the preflight: a second look names the cause', () => {
  /** Two derivations of 4 s each; with one job on the builder, Nix opens the second's connection after the first. */
  function twoInTurn(): { args: string; installables: string; marker: string } {
    const { args, installables, nonce } = numberedDerivations(lab, 2, { seconds: 4 })
    return { args, installables, marker: `> building ${nonce}` }
  }

  const cases: { cause: string; found: string; firstLine: string; breakIt: () => Promise<void> }[] = [
    {
      cause: 'down',
      found: 'unreachable',
      firstLine: `Builder nixbuilder@127.0.0.1:${a.port} is unreachable`,
      breakIt: () => builderCtl('kill-listener', 'a')
    },
    {
      cause: 'host key changed',
      found: 'host-key-mismatch',
      firstLine: `Builder nixbuilder@127.0.0.1:${a.port} presented a host key that is not the pinned one`,
      breakIt: async () => {
        const keyFile = join(dirname(a.sshdLog), 'ssh_host_ed25519_key')
        execFileSync('cp', ['-p', keyFile, `${keyFile}.saved`])
        execFileSync('cp', ['-p', `${keyFile}.pub`, `${keyFile}.pub.saved`])
        execFileSync('rm', ['-f', keyFile, `${keyFile}.pub`])
        execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile])
        await builderCtl('reload', 'a')
      }
    },
    {
      cause: 'key refused',
      found: 'key-refused',
      firstLine: `Builder nixbuilder@127.0.0.1:${a.port} refused the client key`,
      breakIt: async () => {
        const authorized = join(dirname(a.sshdLog), 'authorized_keys')
        execFileSync('cp', ['-p', authorized, `${authorized}.saved`])
        writeFileSync(authorized, '')
      }
    }
  ]

  afterEach(() => {
    // Put back what a case changed; the file-level afterEach restarts the builder.
    const dir = dirname(a.sshdLog)
    for (const file of ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub', 'authorized_keys']) {
      const saved = join(dir, `${file}.saved`)
      if (existsSync(saved)) renameSync(saved, join(dir, file))
    }
  })

  for (const { cause, found, firstLine, breakIt } of cases) {
    it(`${cause}: Nix only says it could not connect; the action checks again and says why`, async () => {
      await builderCtl('restart', 'a')
      const drv = twoInTurn()
      const { done } = await startMainUntil(
        lab,
        { ...builderInputs(lab, 'a'), multiplex: 'false', args: drv.args, installables: drv.installables },
        drv.marker
      )
      await breakIt()
      const main = await done
      const log = visibleLog(main)
      expect(main.code, log).toBe(1)
      expect(log).toContain(
        `Second look at builder nixbuilder@127.0.0.1:${a.port}, which Nix could not connect to during the build: ${found}.`
      )
      // The step's own error, the first error annotation (the diagnosis puts errors first), is the second look's.
      const stepError = log.split('\n').find(line => line.startsWith('::error')) ?? ''
      expect(stepError, log).toContain(firstLine)
      expect((await runPost(lab, main)).code).toBe(0)
    })
  }
})

describe('auto and several builders', () => {
  it('detects systems, features and max-jobs from the builder’s own Nix', async () => {
    const [json = '{}', coreCount = ''] = execFileSync('ssh', [
      ...[
        '-i',
        lab.clientKey,
        '-p',
        String(a.port),
        '-o',
        'UserKnownHostsFile=/var/lib/nix-offload-lab/known_hosts'
      ],
      ...['-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `${a.user}@${a.host}`],
      'nix --extra-experimental-features nix-command show-config --json; echo; getconf _NPROCESSORS_ONLN'
    ])
      .toString()
      .split('\n')
      .filter(line => line.trim() !== '')
    const config = JSON.parse(json) as Record<string, { value: unknown } | undefined>
    const cores = Number(coreCount.trim())
    const drv = freshDerivation(lab, { features: ['lab-a'] })
    const filesKept = watchFiles(lab)
    const main = await runMain(lab, {
      ...builderInputs(lab, 'a'),
      systems: 'auto',
      'supported-features': 'auto',
      'max-jobs': 'auto',
      args: drv.args,
      installables: 'drv'
    })
    expect(main.code, visibleLog(main)).toBe(0)
    const report = JSON.parse(readFileSync(hostPath(lab, main.outputs.report ?? ''), 'utf8')) as {
      preflight: { detected?: { systems: string[]; supportedFeatures: string[]; maxJobs: number } }[]
      builders: { systems: string[]; supportedFeatures: string[]; maxJobs: number }[]
    }
    const expected = {
      systems: [config.system?.value, ...((config['extra-platforms']?.value as string[] | undefined) ?? [])],
      supportedFeatures: config['system-features']?.value,
      maxJobs: cores
    }
    expect(report.preflight[0]?.detected).toEqual(expected)
    expect(report.builders[0]).toMatchObject(expected)
    expect(main.summary).toContain('detected: systems `x86_64-linux`')
    expect(main.outputs.confirmed).toBe('true')
    await runPost(lab, main)
    filesKept()
  })

  const twoBuilders = {
    ...builderInputs(lab, 'a'),
    builders: `ssh-ng://${b.user}@${b.host}:${b.port}`,
    'known-hosts': `[${b.host}]:${b.port} ${b.hostPublicKey}`
  }

  it('fails when one of two builders is down, naming it, and says skip-unhealthy would go on', async () => {
    await builderCtl('stop', 'a')
    const main = await expectUntouched({ ...twoBuilders, installables: 'drv' })
    expect(firstError(main)).toContain(`Builder nixbuilder@127.0.0.1:${a.port} is unreachable`)
    expect(visibleLog(main)).toContain(
      "Set 'skip-unhealthy: true' to build on the 1 healthy builder(s) anyway."
    )
    expect(main.outputs['builders-healthy']).toBe('1')
  })

  it('writes nothing before the preflight has passed when the configuration waits for it (auto)', async () => {
    await builderCtl('stop', 'a')
    const filesKept = watchFiles(lab)
    const main = await runMain(lab, { ...builderInputs(lab, 'a'), systems: 'auto', installables: 'drv' })
    expect(main.code).toBe(1)
    expect(firstError(main)).toContain(`Builder nixbuilder@127.0.0.1:${a.port} is unreachable`)
    expect(main.stdout).not.toContain('Configuring for')
    expect(main.state).toEqual({})
    filesKept()
  })

  it('builds on the healthy builder when the other is down and skip-unhealthy is true', async () => {
    await builderCtl('stop', 'a')
    const drv = freshDerivation(lab)
    const filesKept = watchFiles(lab)
    const main = await runMain(lab, {
      ...twoBuilders,
      'skip-unhealthy': 'true',
      args: drv.args,
      installables: 'drv'
    })
    expect(main.code, visibleLog(main)).toBe(0)
    expect(visibleLog(main)).toMatch(
      /::warning title=nix-offload%3A nixbuilder@127\.0\.0\.1%3A22\d1 unreachable::/
    )
    expect(main.outputs).toMatchObject({ confirmed: 'true', 'builders-healthy': '1' })
    const report = JSON.parse(readFileSync(hostPath(lab, main.outputs.report ?? ''), 'utf8')) as {
      derivations: { builder: string }[]
    }
    expect(report.derivations[0]?.builder).toBe(`127.0.0.1:${b.port}`)
    expect(inStore(b.storeDir, main.outputs['out-paths'] ?? '')).toBe(true)
    await runPost(lab, main)
    filesKept()
  })
})
