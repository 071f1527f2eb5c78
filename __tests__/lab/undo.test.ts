import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import {
  builder,
  builderInputs,
  freshDerivation,
  hostPath,
  type Lab,
  loadLab,
  runCommandAs,
  runPost,
  secretLines,
  startMainUntil,
  type StepResult,
  visibleLog,
  runMain
} from './harness.js'
import { derivationInputs, watchFiles } from './setup.js'

const lab: Lab = loadLab()
const a = builder(lab, 'a')
const ROOT_CONFIG = hostPath(lab, '/root/.ssh/config')
// No final newline, global options before any Host line, and a Host * of the user's own: the hard cases for a prepend.
const USER_CONFIG =
  'ServerAliveInterval 5\nHost myhost\n  HostName 192.0.2.1\nHost *\n  StrictHostKeyChecking no'

async function seedUserFiles(): Promise<void> {
  mkdirSync(hostPath(lab, '/root/.ssh'), { recursive: true, mode: 0o700 })
  writeFileSync(ROOT_CONFIG, USER_CONFIG, { mode: 0o644 })
  writeFileSync(
    hostPath(lab, '/root/.ssh/known_hosts'),
    'example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL6YugzZkPtpsXcQt\n',
    {
      mode: 0o600
    }
  )
  await runCommandAs(lab, 'runner', ['mkdir', '-p', '-m', '700', '/home/runner/.ssh'])
  await runCommandAs(lab, 'runner', ['sh', '-c', 'printf "Host x\\n  User y\\n" > /home/runner/.ssh/config'])
}

afterEach(() => {
  rmSync(hostPath(lab, '/root/.ssh'), { recursive: true, force: true })
  rmSync(hostPath(lab, '/home/runner/.ssh'), { recursive: true, force: true })
})

function expectClean(main: StepResult): void {
  for (const line of secretLines(lab.clientKey)) expect(visibleLog(main) + main.files).not.toContain(line)
}

describe('the post step', () => {
  it('puts back ssh files that existed before, byte for byte, and keeps the user’s config working meanwhile', async () => {
    await seedUserFiles()
    const filesKept = watchFiles(lab)
    const drv = freshDerivation(lab)
    const main = await runMain(lab, derivationInputs(lab, drv))
    expect(main.code, visibleLog(main)).toBe(0)
    expect(main.outputs.confirmed).toBe('true')
    // Our block goes first, so its pinned settings win over the user's `Host *  StrictHostKeyChecking no`.
    const during = readFileSync(ROOT_CONFIG, 'utf8')
    expect(during.startsWith('# nix-offload ')).toBe(true)
    expect(
      during.endsWith(
        `Host *\n# nix-offload ${/nix-offload ([0-9a-f]+):/.exec(during)?.[1]}: end\n${USER_CONFIG}`
      )
    ).toBe(true)

    const post = await runPost(lab, main)
    expect(post.code).toBe(0)
    filesKept()
    expect(readFileSync(ROOT_CONFIG, 'utf8')).toBe(USER_CONFIG)
    expectClean(main)
  })

  it('restores the runner after a main step whose build failed on the builder', async () => {
    await seedUserFiles()
    const filesKept = watchFiles(lab)
    const drv = freshDerivation(lab, { fail: true })
    const main = await runMain(lab, derivationInputs(lab, drv))
    expect(main.code).toBe(1)
    expect(visibleLog(main)).toMatch(
      new RegExp(
        `::error title=nix-offload%3A Build failed on [^:]*::Derivation ${drv.name} failed with exit code 3 on builder nixbuilder@127\\.0\\.0\\.1:${a.port}\\.`
      )
    )
    const report = JSON.parse(readFileSync(hostPath(lab, main.outputs.report ?? ''), 'utf8')) as {
      derivations: { status: string }[]
    }
    expect(report.derivations[0]?.status).toBe('failed')
    // A failed derivation is counted as failed, not as a build on the builder, and nothing is confirmed.
    expect(main.outputs).toMatchObject({ confirmed: 'false', 'failed-builds': '1', 'remote-builds': '0' })
    const post = await runPost(lab, main)
    expect(post.code).toBe(0)
    filesKept()
    expectClean(main)
  })

  it('restores the runner after a main step killed half-way through a build', async () => {
    const filesKept = watchFiles(lab)
    const drv = freshDerivation(lab, { seconds: 30 })
    const { child, done } = await startMainUntil(lab, derivationInputs(lab, drv), `${drv.name}> building`)
    // As the runner does on cancellation: kill the step and everything it started.
    await runCommandAs(lab, 'root', ['pkill', '-KILL', '-f', drv.nonce])
    child.kill('SIGKILL')
    const main = await done
    expect(main.signal).toBe('SIGKILL')
    expect(readFileSync(ROOT_CONFIG, 'utf8')).toContain('# nix-offload')
    const post = await runPost(lab, main)
    expect(post.code).toBe(0)
    filesKept()
  })

  it('does nothing, and says so, after a main step that refused its inputs', async () => {
    const filesKept = watchFiles(lab)
    const main = await runMain(lab, { ...builderInputs(lab, 'a'), port: 'x' })
    expect(main.code).toBe(1)
    const post = await runPost(lab, main)
    expect(post.code).toBe(0)
    expect(post.stdout).toContain('nothing to undo')
    filesKept()
  })
})
