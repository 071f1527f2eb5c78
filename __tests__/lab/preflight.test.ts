import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import {
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
  snapshot,
  sshMasters,
  startMainUntil,
  type StepResult,
  visibleLog,
  watched
} from './harness.js'

const lab: Lab = loadLab()
const a = builder(lab, 'a')
const b = builder(lab, 'b')

/** The first error line the step printed: what a user reads first. */
function firstError(result: StepResult): string {
  return (
    visibleLog(result)
      .split('\n')
      .find(line => line.startsWith('::error')) ?? ''
  )
}

async function builderCtl(command: string, name: string): Promise<void> {
  await ctlBuilder(lab, command, name)
}

/**
 * Nothing may be left behind by a step that failed its preflight. Either it failed before the first write, or (no
 * `auto`, no `skip-unhealthy`) it configured the runner beside the preflight and undid that before it ended: the
 * runner is as it was when main ends, and the post step has nothing to undo.
 */
async function expectUntouched(inputs: Record<string, string>): Promise<StepResult> {
  const before = snapshot(watched(lab))
  const main = await runMain(lab, inputs)
  expect(main.code).toBe(1)
  expect(snapshot(watched(lab))).toEqual(before)
  expect(await sshMasters(lab)).toBe('')
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

afterEach(async () => {
  for (const name of ['a', 'b']) await builderCtl('start', name)
})

describe('preflight faults, each named in the first error line', () => {
  it('1. builder down: unreachable, with host and port', async () => {
    await builderCtl('stop', 'a')
    const main = await expectUntouched({ ...builderInputs(lab, 'a'), installables: 'drv' })
    expect(firstError(main)).toContain(
      'Builder nixbuilder@127.0.0.1:2201 is unreachable: connection refused on 127.0.0.1 port 2201'
    )
    expect(main.outputs['builders-healthy']).toBe('0')
    const report = JSON.parse(readFileSync(hostPath(lab, main.outputs.report ?? ''), 'utf8')) as {
      preflight: { cause: string }[]
    }
    expect(report.preflight[0]?.cause).toBe('unreachable')
    expect(main.summary).toContain('❌ unreachable')
  })

  it('2. wrong pinned host key: both fingerprints', async () => {
    const main = await expectUntouched({ ...builderInputs(lab, 'a'), 'host-public-key': b.hostPublicKey })
    const error = firstError(main)
    expect(error).toContain(
      'Builder nixbuilder@127.0.0.1:2201 presented a host key that is not the pinned one'
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
      'Builder nixbuilder@127.0.0.1:2201 refused the client key (ssh-ed25519) for user nixbuilder'
    )
    expect(error).toContain(readFileSync(`${lab.otherKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' '))
  })

  it('5. builder user not trusted by the builder’s Nix 2.8 (ssh-ng < 2.16 needs it): the trusted-users fix', async () => {
    const conf = readFileSync(a.nixConf, 'utf8')
    writeFileSync(a.nixConf, conf.replace(/^trusted-users = .*$/m, 'trusted-users = root'))
    try {
      await builderCtl('restart', 'a')
      const main = await expectUntouched({ ...builderInputs(lab, 'a'), installables: 'drv' })
      const error = firstError(main)
      expect(error).toContain(
        'Builder nixbuilder@127.0.0.1:2201: its Nix 2.8.0 does not trust user nixbuilder'
      )
      expect(error).toContain('trusted-users = nixbuilder')
    } finally {
      writeFileSync(a.nixConf, conf)
      await builderCtl('restart', 'a')
    }
  })

  it('7. no Nix on the builder user’s non-interactive PATH: how to make it reachable', async () => {
    const main = await expectUntouched({ ...builderInputs(lab, 'a'), user: 'nixnopath', installables: 'drv' })
    const error = firstError(main)
    expect(error).toContain(
      'Builder nixnopath@127.0.0.1:2201: nix-daemon is not on the non-interactive PATH of nixnopath'
    )
    expect(error).toContain('/nix/var/nix/profiles/default/bin')
  })

  it('pins nothing without host-public-key: prints the line to paste and its fingerprint', async () => {
    const main = await expectUntouched({ ...builderInputs(lab, 'a'), 'host-public-key': '' })
    const log = visibleLog(main)
    expect(firstError(main)).toMatch(
      /^::error[^:]*::Input 'host-public-key': builder nixbuilder@127\.0\.0\.1:2201 has no pinned host key/
    )
    expect(log).toContain(`It presents ssh-ed25519 ${fingerprintOf(a.hostPublicKey)}`)
    expect(log).toContain(`%0A${a.hostPublicKey}`)
  })
})

describe('build faults', () => {
  it('6. a derivation needing a feature no builder offers: what it needs and what each builder offers', async () => {
    const drv = freshDerivation(lab, { features: ['lab-c'] })
    const before = snapshot(watched(lab))
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
    expect(error).toContain('nixbuilder@127.0.0.1:2201')
    expect(error).toContain('benchmark')
    expect(error).not.toContain('unexpected end-of-file')
    await runPost(lab, main)
    expect(snapshot(watched(lab))).toEqual(before)
  })
})

describe('a builder lost in the middle of a build', () => {
  it('8. sshd killed mid-build: a dropped connection for that derivation, no hang, and the post step restores', async () => {
    const before = snapshot(watched(lab))
    // Far longer than the test may take: if the action waited for the build, the test would time out.
    const drv = freshDerivation(lab, { seconds: 600 })
    const { done } = await startMainUntil(
      lab,
      { ...builderInputs(lab, 'a'), args: drv.args, installables: 'drv' },
      `${drv.name}> building`
    )
    await builderCtl('kill-sshd', 'a')
    const main = await done
    await runCommandAs(lab, 'root', ['pkill', '-KILL', '-f', drv.nonce])
    expect(main.code).toBe(1)
    const error = firstError(main)
    expect(error, visibleLog(main)).toMatch(/connection|dropped|lost/i)
    expect(error).toContain(drv.name)
    expect(error).toContain('nixbuilder@127.0.0.1:2201')
    const post = await runPost(lab, main)
    expect(post.code).toBe(0)
    expect(snapshot(watched(lab))).toEqual(before)
  })
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
    const before = snapshot(watched(lab))
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
    expect(main.summary).toContain('detected: systems x86_64-linux')
    expect(main.outputs.confirmed).toBe('true')
    await runPost(lab, main)
    expect(snapshot(watched(lab))).toEqual(before)
  })

  const twoBuilders = {
    ...builderInputs(lab, 'a'),
    builders: `ssh-ng://${b.user}@${b.host}:${b.port}`,
    'known-hosts': `[${b.host}]:${b.port} ${b.hostPublicKey}`
  }

  it('fails when one of two builders is down, naming it, and says skip-unhealthy would go on', async () => {
    await builderCtl('stop', 'a')
    const main = await expectUntouched({ ...twoBuilders, installables: 'drv' })
    expect(firstError(main)).toContain('Builder nixbuilder@127.0.0.1:2201 is unreachable')
    expect(visibleLog(main)).toContain(
      "Set 'skip-unhealthy: true' to build on the 1 healthy builder(s) anyway."
    )
    expect(main.outputs['builders-healthy']).toBe('1')
  })

  it('writes nothing before the preflight has passed when the configuration waits for it (auto)', async () => {
    await builderCtl('stop', 'a')
    const before = snapshot(watched(lab))
    const main = await runMain(lab, { ...builderInputs(lab, 'a'), systems: 'auto', installables: 'drv' })
    expect(main.code).toBe(1)
    expect(firstError(main)).toContain('Builder nixbuilder@127.0.0.1:2201 is unreachable')
    expect(main.stdout).not.toContain('Configuring for')
    expect(main.state).toEqual({})
    expect(snapshot(watched(lab))).toEqual(before)
  })

  it('builds on the healthy builder when the other is down and skip-unhealthy is true', async () => {
    await builderCtl('stop', 'a')
    const drv = freshDerivation(lab)
    const before = snapshot(watched(lab))
    const main = await runMain(lab, {
      ...twoBuilders,
      'skip-unhealthy': 'true',
      args: drv.args,
      installables: 'drv'
    })
    expect(main.code, visibleLog(main)).toBe(0)
    expect(visibleLog(main)).toMatch(
      /::warning title=nix-offload%3A nixbuilder@127\.0\.0\.1%3A2201 unreachable::/
    )
    expect(main.outputs).toMatchObject({ confirmed: 'true', 'builders-healthy': '1' })
    const report = JSON.parse(readFileSync(hostPath(lab, main.outputs.report ?? ''), 'utf8')) as {
      derivations: { builder: string }[]
    }
    expect(report.derivations[0]?.builder).toBe('127.0.0.1:2202')
    expect(inStore(b.storeDir, main.outputs['out-paths'] ?? '')).toBe(true)
    await runPost(lab, main)
    expect(snapshot(watched(lab))).toEqual(before)
  })
})
