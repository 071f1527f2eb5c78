import { describe, expect, it } from 'vitest'
import {
  builder,
  builderCtl,
  builderInputs,
  freshDerivation,
  type Lab,
  loadLab,
  reportOf,
  ROOT,
  runMain,
  runOnHost,
  runPost,
  type StepResult,
  startMainUntil,
  visibleLog
} from './harness.js'

const lab: Lab = loadLab()

interface Report {
  confirmed: boolean
  derivations: { name: string; machine: string; attempts: number }[]
  builders: { storeUri: string }[]
  failovers?: { builder: string; cause: string; movedTo: string[]; derivations: string[] }[]
}

const STRATEGIES = ['hook', 'remote-store'] as const

/** Builders `a` (preferred: faster) and `b`, so that a's loss leaves b healthy. */
function twoBuilders(strategy: (typeof STRATEGIES)[number]): Record<string, string> {
  const b = builder(lab, 'b')
  return {
    ...builderInputs(lab, 'a'),
    'speed-factor': '10',
    builders: `ssh-ng://${b.user}@${b.host}:${b.port} ${lab.localSystem} - 1 1 - -`,
    'known-hosts': `[${b.host}]:${b.port} ${b.hostPublicKey}`,
    strategy
  }
}

/** Sends `signal` to every process of a builder (its sshd, nix-daemon and their sessions), as lab/lib.sh finds them. */
async function signalBuilder(name: string, signal: 'STOP' | 'CONT'): Promise<void> {
  const id = builder(lab, name).id
  const script = `. ${ROOT}/lab/lib.sh; for pid in $(builder_pids ${id}); do kill -${signal} "$pid" || true; done`
  const result = await runOnHost(['bash', '-c', script])
  if (result.code !== 0) throw new Error(`kill -${signal} builder ${name}: ${result.stderr}`)
}

/** Main, broken once the derivation is building: the result of the step, then its post step. */
async function breakMidBuild(
  inputs: Record<string, string>,
  nonce: string,
  breakIt: () => Promise<void>
): Promise<StepResult> {
  const step = await startMainUntil(lab, inputs, `building ${nonce}`)
  await breakIt()
  const main = await step.done
  expect((await runPost(lab, main)).code).toBe(0)
  return main
}

describe.each(STRATEGIES)('failover (%s)', strategy => {
  it('a builder stopped mid-build: its derivation goes to the other builder, and the summary names it', async () => {
    const drv = freshDerivation(lab, { seconds: 20 })
    try {
      const main = await breakMidBuild(
        { ...twoBuilders(strategy), args: drv.args, installables: 'drv' },
        drv.nonce,
        () => builderCtl(lab, 'stop', 'a')
      )
      expect(main.code, visibleLog(main)).toBe(0)
      const report = reportOf<Report>(lab, main)
      const [a, b] = report.builders.map(entry => entry.storeUri)
      expect(report.failovers?.[0]).toMatchObject({ builder: a, movedTo: [b] })
      expect(report.derivations.find(d => d.name === drv.name)?.machine).toBe(b)
      expect(report.confirmed).toBe(true)
      expect(main.summary).toContain('### Failover')
      expect(main.summary).toContain(a)
    } finally {
      await builderCtl(lab, 'start', 'a')
    }
  }, 240_000)

  it('a builder frozen mid-build (sshd and nix-daemon stopped): its work goes to the other builder', async () => {
    const drv = freshDerivation(lab, { seconds: 20 })
    try {
      const main = await breakMidBuild(
        { ...twoBuilders(strategy), args: drv.args, installables: 'drv' },
        drv.nonce,
        () => signalBuilder('a', 'STOP')
      )
      expect(main.code, visibleLog(main)).toBe(0)
      const report = reportOf<Report>(lab, main)
      expect(report.failovers?.[0]?.builder).toBe(report.builders[0]?.storeUri)
      expect(report.derivations.find(d => d.name === drv.name)?.machine).toBe(report.builders[1]?.storeUri)
    } finally {
      await signalBuilder('a', 'CONT')
    }
  }, 300_000)

  it('the only builder lost, with `fallback: local`: built on the runner, confirmed false', async () => {
    const drv = freshDerivation(lab, { seconds: 20 })
    try {
      const main = await breakMidBuild(
        { ...builderInputs(lab, 'a'), strategy, fallback: 'local', args: drv.args, installables: 'drv' },
        drv.nonce,
        () => builderCtl(lab, 'stop', 'a')
      )
      expect(main.code, visibleLog(main)).toBe(0)
      expect(main.outputs).toMatchObject({ confirmed: 'false', 'local-builds': '1' })
      const report = reportOf<Report>(lab, main)
      expect(report.failovers?.[0]?.movedTo).toEqual(['local'])
      expect(report.derivations.find(d => d.name === drv.name)?.machine).toBe('local')
      expect(visibleLog(main)).toContain('Building the rest on the runner')
    } finally {
      await builderCtl(lab, 'start', 'a')
    }
  }, 240_000)

  it('a derivation whose builder script fails is built once, not retried', async () => {
    const drv = freshDerivation(lab, { fail: true })
    const main = await runMain(lab, {
      ...twoBuilders(strategy),
      retries: '3',
      args: drv.args,
      installables: 'drv'
    })
    expect(main.code).toBe(1)
    // Nix says `building '<drv>'` once per attempt (the diagnosis may quote the builder's own lines again).
    const attempts = visibleLog(main)
      .split('\n')
      .filter(line => /^building '\/nix\/store\/[0-9a-z]{32}-/.test(line) && line.includes(drv.nonce))
    expect(attempts, visibleLog(main)).toHaveLength(1)
    const report = reportOf<Report>(lab, main)
    expect(report.failovers ?? []).toEqual([])
    expect(report.derivations.find(d => d.name === drv.name)?.attempts).toBe(1)
    expect((await runPost(lab, main)).code).toBe(0)
  })
})
