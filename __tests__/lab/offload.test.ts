import { readFileSync, writeFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  builder,
  builderInputs,
  freshDerivation,
  hostPath,
  inStore,
  type Lab,
  loadLab,
  nixAtLeast,
  reportOf,
  restartRunnerDaemon,
  runCommandAs,
  runMain,
  RUNNER_NIX,
  runPost,
  secretLines,
  type StepResult,
  visibleLog
} from './harness.js'
import { derivationInputs, watchFiles } from './setup.js'

const lab: Lab = loadLab()
const a = builder(lab, 'a')
const NIX_CONF = hostPath(lab, '/etc/nix/nix.conf')

interface Report {
  configPath: string
  builders: { storeUri: string; host: string; port: number; bytesSent?: number; bytesReceived?: number }[]
  derivations: {
    drvPath: string
    name: string
    machine: string
    builder?: string
    durationMs?: number
    status: string
  }[]
  outPaths: string[]
  confirmed: boolean
}

function expectNoSecret(result: StepResult): void {
  const everything = visibleLog(result) + result.files
  for (const line of secretLines(lab.clientKey)) expect(everything).not.toContain(line)
}

/** Runs main then post, and checks the post step put every watched file back. */
async function offloadAndUndo(
  inputs: Record<string, string>,
  options: Parameters<typeof runMain>[2] = {}
): Promise<StepResult> {
  const filesKept = watchFiles(lab)
  const main = await runMain(lab, inputs, options)
  const post = await runPost(lab, main)
  expect(post.code, post.stdout + post.stderr).toBe(0)
  expect(post.stdout).not.toContain('::warning')
  filesKept()
  expectNoSecret(main)
  return main
}

/** Runs `fn` with the local daemon started on another nix.conf, then puts the lab's back. */
async function withDaemonConfig(config: string, fn: () => Promise<void>): Promise<void> {
  const original = readFileSync(NIX_CONF)
  writeFileSync(NIX_CONF, config)
  await restartDaemon()
  try {
    await fn()
  } finally {
    writeFileSync(NIX_CONF, original)
    await restartDaemon()
  }
}

async function restartDaemon(): Promise<void> {
  await restartRunnerDaemon(lab)
}

describe('offloading a fresh derivation', () => {
  it('builds it on the builder when the runner user is trusted, proves it, and undoes everything', async () => {
    const drv = freshDerivation(lab)
    const main = await offloadAndUndo(derivationInputs(lab, drv))
    expect(main.code, visibleLog(main)).toBe(0)
    expect(main.outputs).toMatchObject({ confirmed: 'true', 'remote-builds': '1', 'local-builds': '0' })
    const [outPath] = main.outputs['out-paths']?.split('\n') ?? []
    expect(outPath).toMatch(new RegExp(`^/nix/store/[a-z0-9]{32}-${drv.name}$`))
    expect(inStore(hostPath(lab, '/nix/store'), outPath ?? '')).toBe(true)
    expect(inStore(builder(lab, 'a').storeDir, outPath ?? '')).toBe(true)
    expect(inStore(builder(lab, 'b').storeDir, outPath ?? '')).toBe(false)

    const report = reportOf<Report>(lab, main)
    expect(report.configPath).toBe('trusted-client')
    expect(report.derivations).toHaveLength(1)
    expect(report.derivations[0]).toMatchObject({
      name: drv.name,
      builder: `127.0.0.1:${a.port}`,
      status: 'built'
    })
    expect(report.derivations[0]?.machine).toBe(report.builders[0]?.storeUri)
    expect(report.outPaths).toEqual([outPath])
    // The hook copied the output back: its bytes are counted from Nix's copy activities.
    expect(report.builders[0]?.bytesReceived).toBeGreaterThan(0)

    const log = visibleLog(main)
    expect(log).toContain(`building '${report.derivations[0]?.drvPath}' on '${report.builders[0]?.storeUri}'`)
    expect(log).toContain(`${drv.name}> building ${drv.nonce}`)
    // Each Nix command the action runs is the current form on this runner's Nix (e.g. `store info` on 2.34).
    expect(log).not.toMatch(/deprecat/i)
    expect(main.summary).toContain('Confirmed')
    expect(main.summary).toContain(`| \`${drv.name}\` | \`127.0.0.1:${a.port}\` |`)
  })

  it('builds on the builder when the runner user is not trusted, through the daemon machines file', async () => {
    const config = readFileSync(NIX_CONF, 'utf8').replace(/^trusted-users = .*$/m, 'trusted-users = root')
    await withDaemonConfig(config, async () => {
      const drv = freshDerivation(lab)
      const main = await offloadAndUndo(derivationInputs(lab, drv))
      expect(main.code, visibleLog(main)).toBe(0)
      expect(main.outputs.confirmed).toBe('true')
      expect(reportOf<Report>(lab, main).configPath).toBe('machines-file')
      expect(main.env.NIX_CONFIG ?? '').toBe('')
      // No systemd here to restart the daemon: the optimisation is skipped with a warning, the build still offloads.
      expect(visibleLog(main)).toMatch(
        /::warning title=nix-offload::'builders-use-substitutes' is not applied/
      )
      expect(inStore(builder(lab, 'a').storeDir, main.outputs['out-paths'] ?? '')).toBe(true)
    })
  })

  it('restores an /etc/nix/machines that existed before, byte for byte', async () => {
    const config = readFileSync(NIX_CONF, 'utf8').replace(/^trusted-users = .*$/m, 'trusted-users = root')
    await withDaemonConfig(config, async () => {
      const original = "# the runner owner's own builders\nssh://someone@elsewhere x86_64-linux\n"
      writeFileSync(hostPath(lab, '/etc/nix/machines'), original, { mode: 0o640 })
      try {
        const drv = freshDerivation(lab)
        const main = await offloadAndUndo(derivationInputs(lab, drv))
        expect(main.code, visibleLog(main)).toBe(0)
        expect(readFileSync(hostPath(lab, '/etc/nix/machines'), 'utf8')).toBe(original)
      } finally {
        await runCommandAs(lab, 'root', ['rm', '-f', '/etc/nix/machines'])
      }
    })
  })

  it('fails with the fix, before writing anything, when an untrusted user meets a daemon that needs a restart', async () => {
    const config =
      readFileSync(NIX_CONF, 'utf8').replace(/^trusted-users = .*$/m, 'trusted-users = root') + 'builders =\n'
    await withDaemonConfig(config, async () => {
      const filesKept = watchFiles(lab)
      const main = await runMain(lab, { ...builderInputs(lab, 'a'), installables: 'drv' })
      expect(main.code).toBe(1)
      const error =
        visibleLog(main)
          .split('\n')
          .find(line => line.startsWith('::error')) ?? ''
      expect(error).toContain('does not trust the runner user runner')
      expect(error).toContain('neither systemd nor launchd')
      expect(error).toContain('trusted-users = root runner')
      expect(main.state).toEqual({})
      filesKept()
    })
  })

  it('builds on the builder with no daemon (single-user, as root), configuring root itself', async () => {
    const drv = freshDerivation(lab)
    const main = await offloadAndUndo(derivationInputs(lab, drv), {
      runAs: 'root',
      env: { NIX_REMOTE: 'local' }
    })
    expect(main.code, visibleLog(main)).toBe(0)
    expect(main.outputs.confirmed).toBe('true')
    expect(reportOf<Report>(lab, main).configPath).toBe('single-user')
    expect(inStore(builder(lab, 'a').storeDir, main.outputs['out-paths'] ?? '')).toBe(true)
  })
})

describe('builders', () => {
  it('sends a derivation to the extra builder from `builders` whose features it needs', async () => {
    const drv = freshDerivation(lab, { features: ['lab-b'] })
    const b = builder(lab, 'b')
    const main = await offloadAndUndo({
      ...builderInputs(lab, 'a'),
      'supported-features': 'benchmark, big-parallel lab-a',
      builders: `ssh-ng://${b.user}@${b.host}:${b.port} ${lab.localSystem} - 2 1 benchmark,lab-b -`,
      'known-hosts': `[${b.host}]:${b.port} ${b.hostPublicKey}`,
      args: drv.args,
      installables: 'drv'
    })
    expect(main.code, visibleLog(main)).toBe(0)
    const report = reportOf<Report>(lab, main)
    expect(report.builders.map(entry => `${entry.host}:${entry.port}`)).toEqual([
      `127.0.0.1:${a.port}`,
      `127.0.0.1:${b.port}`
    ])
    expect(report.derivations[0]).toMatchObject({ name: drv.name, builder: `127.0.0.1:${b.port}` })
    expect(report.derivations[0]?.machine).toBe(report.builders[1]?.storeUri)
    expect(inStore(b.storeDir, main.outputs['out-paths'] ?? '')).toBe(true)
    expect(inStore(builder(lab, 'a').storeDir, main.outputs['out-paths'] ?? '')).toBe(false)
  })

  it('offloads over the legacy ssh protocol (nix-store --serve) too', async () => {
    const drv = freshDerivation(lab)
    const main = await offloadAndUndo({
      ...builderInputs(lab, 'a'),
      protocol: 'ssh',
      args: drv.args,
      installables: 'drv'
    })
    expect(main.code, visibleLog(main)).toBe(0)
    expect(main.outputs.confirmed).toBe('true')
    expect(reportOf<Report>(lab, main).derivations[0]?.machine).toMatch(
      /^ssh:\/\/nixbuilder@nix-offload-[0-9a-f]+-1$/
    )
    expect(inStore(builder(lab, 'a').storeDir, main.outputs['out-paths'] ?? '')).toBe(true)
  })
})

describe('secrets', () => {
  it('an --impure expression reading the private key input from the environment gets an empty string', async () => {
    const nonce = Date.now().toString(36)
    // The input reaches the builder as the derivation's `secret` attribute, and from there its output.
    const expr =
      `builtins.derivation { name = "nix-offload-test-env-${nonce}"; system = "${lab.localSystem}"; ` +
      'secret = builtins.getEnv "INPUT_SSH-PRIVATE-KEY"; builder = "/bin/sh"; ' +
      'args = [ "-c" "printf %s \\"$secret\\" > $out" ]; }'
    const main = await offloadAndUndo({
      ...builderInputs(lab, 'a'),
      args: `--impure --expr '${expr}'`
    })
    expect(main.code, visibleLog(main)).toBe(0)
    expect(main.outputs.confirmed).toBe('true')
    const [outPath = ''] = main.outputs['out-paths']?.split('\n') ?? []
    expect(readFileSync(hostPath(lab, outPath), 'utf8')).toBe('')
  })
})

describe('configure only', () => {
  it('lets a later step’s plain nix build offload, with the NIX_CONFIG main exported', async () => {
    const filesKept = watchFiles(lab)
    const main = await runMain(lab, builderInputs(lab, 'a'))
    expect(main.code, visibleLog(main)).toBe(0)
    expect(main.outputs).toMatchObject({ confirmed: 'false', 'remote-builds': '0', 'local-builds': '0' })
    expect(main.env.NIX_CONFIG).toMatch(/^builders = @\/root\/\.ssh\/nix-offload-[0-9a-f]+\/machines$/m)

    const drv = freshDerivation(lab)
    const later = await runCommandAs(
      lab,
      'runner',
      [
        'nix',
        '--extra-experimental-features',
        'nix-command',
        'build',
        '--no-link',
        '--json',
        ...drv.args.split(' '),
        'drv'
      ],
      { NIX_CONFIG: main.env.NIX_CONFIG ?? '' }
    )
    expect(later.code, later.stderr).toBe(0)
    expect(later.stderr).toMatch(/building '\/nix\/store\/[^']+\.drv' on 'ssh-ng:\/\/nixbuilder@nix-offload-/)
    const outPath = (JSON.parse(later.stdout) as { outputs: { out: string } }[])[0]?.outputs.out ?? ''
    expect(inStore(builder(lab, 'a').storeDir, outPath)).toBe(true)

    const post = await runPost(lab, main)
    expect(post.code).toBe(0)
    filesKept()
    expectNoSecret(main)
  })
})

describe('require-remote', () => {
  it('fails a build that ran on the runner, naming the derivation', async () => {
    const drv = freshDerivation(lab)
    // The only builder offers another system, so Nix declines to offload and, with a local slot, builds here.
    const main = await offloadAndUndo({
      ...builderInputs(lab, 'a'),
      systems: 'aarch64-linux',
      'local-jobs': '1',
      args: drv.args,
      installables: 'drv'
    })
    expect(main.code).toBe(1)
    expect(main.outputs).toMatchObject({ confirmed: 'false', 'remote-builds': '0', 'local-builds': '1' })
    expect(reportOf<Report>(lab, main).derivations[0]).toMatchObject({
      name: drv.name,
      machine: 'local',
      status: 'built'
    })
    const log = visibleLog(main)
    // One error, the derivation's, with the fix: the step fails with no second copy of it.
    const errors = log.split('\n').filter(line => line.startsWith('::error'))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(
      /^::error title=nix-offload%3A local build::\/nix\/store\/\S+\.drv was built on the runner, not on a builder, although 'require-remote' is true\. Check that/
    )
    expect(main.summary).toContain('**the runner**')
  })

  it('lets the same local build pass when require-remote is false', async () => {
    const drv = freshDerivation(lab)
    const main = await offloadAndUndo({
      ...builderInputs(lab, 'a'),
      systems: 'aarch64-linux',
      'local-jobs': '1',
      'require-remote': 'false',
      args: drv.args,
      installables: 'drv'
    })
    expect(main.code, visibleLog(main)).toBe(0)
    expect(main.outputs).toMatchObject({ confirmed: 'false', 'local-builds': '1' })
  })

  it('says plainly that nothing was built when the outputs are already valid', async () => {
    const drv = freshDerivation(lab)
    const inputs = derivationInputs(lab, drv)
    expect((await offloadAndUndo(inputs)).outputs.confirmed).toBe('true')
    const again = await offloadAndUndo(inputs)
    expect(again.code).toBe(0)
    expect(again.outputs).toMatchObject({ confirmed: 'false', 'remote-builds': '0', 'local-builds': '0' })
    expect(visibleLog(again)).toContain('Nothing was built')
    expect(again.summary).toContain('**Nothing was built**')
  })

  it.runIf(nixAtLeast(RUNNER_NIX, '2.34'))(
    'refuses rebuild before writing anything on a runner whose Nix never offloads a check build',
    async () => {
      const filesKept = watchFiles(lab)
      const main = await runMain(lab, { ...builderInputs(lab, 'a'), installables: 'drv', rebuild: 'true' })
      expect(main.code).toBe(1)
      expect(visibleLog(main)).toMatch(
        /::error title=nix-offload%3A input rebuild::Input 'rebuild': the runner's Nix \d+\.\d+\.\d+ never sends a check build \(--rebuild\) to a builder/
      )
      filesKept()
      expect((await runPost(lab, main)).code).toBe(0)
    }
  )

  it.runIf(!nixAtLeast(RUNNER_NIX, '2.34'))(
    'sends the check build to the builder with rebuild, and warns what that does not prove',
    async () => {
      const drv = freshDerivation(lab)
      const inputs = derivationInputs(lab, drv)
      expect((await offloadAndUndo(inputs)).outputs.confirmed).toBe('true')
      const rebuilt = await offloadAndUndo({ ...inputs, rebuild: 'true' })
      expect(rebuilt.code, visibleLog(rebuilt)).toBe(0)
      expect(visibleLog(rebuilt)).toMatch(/checking outputs of '\/nix\/store\/\S+' on 'ssh-ng:/)
      expect(visibleLog(rebuilt)).toContain('::warning title=nix-offload%3A rebuild::')
    }
  )
})
