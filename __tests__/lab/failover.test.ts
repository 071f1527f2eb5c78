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
  builders: { storeUri: string; port: number }[]
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

/**
 * The lab builder (a or b) whose tag is on the derivation's first build line: the one building it, whichever the
 * strategy chose (remote-store routes by the builders' load, which other tests may leave uneven).
 */
function buildingOn(seen: string, nonce: string): 'a' | 'b' {
  const tag = new RegExp(`^\\[[^\\]]*:(\\d+)\\] [^\\n]*building ${nonce}`, 'm').exec(seen)
  const name = (['a', 'b'] as const).find(n => String(builder(lab, n).port) === tag?.[1])
  if (name === undefined) throw new Error(`no lab builder's tag on the build line of ${nonce}:\n${seen}`)
  return name
}

/**
 * Main, broken once the derivation is building, on the builder building it: the result of the step, then its post
 * step, and the builder broken. `mend` runs whatever happened.
 */
async function breakMidBuild(
  inputs: Record<string, string>,
  nonce: string,
  how: { breakIt: (name: 'a' | 'b') => Promise<void>; mend: (name: 'a' | 'b') => Promise<void> }
): Promise<{ main: StepResult; broken: 'a' | 'b' }> {
  const step = await startMainUntil(lab, inputs, `building ${nonce}`)
  const broken = buildingOn(step.seen, nonce)
  try {
    await how.breakIt(broken)
    const main = await step.done
    expect((await runPost(lab, main)).code).toBe(0)
    return { main, broken }
  } finally {
    await how.mend(broken)
  }
}

/** The report's store URIs of the broken builder and of the other one, by the lab builders' ports. */
function lostAndKept(report: Report, broken: 'a' | 'b'): [string, string] {
  const uri = (name: string): string =>
    report.builders.find(entry => entry.port === builder(lab, name).port)?.storeUri ??
    `no ${name} in the report`
  return [uri(broken), uri(broken === 'a' ? 'b' : 'a')]
}

describe.each(STRATEGIES)('failover (%s)', strategy => {
  it('a builder stopped mid-build: its derivation goes to the other builder, and the summary names it', async () => {
    const drv = freshDerivation(lab, { seconds: 20 })
    const { main, broken } = await breakMidBuild(
      { ...twoBuilders(strategy), args: drv.args, installables: 'drv' },
      drv.nonce,
      { breakIt: name => builderCtl(lab, 'stop', name), mend: name => builderCtl(lab, 'start', name) }
    )
    expect(main.code, visibleLog(main)).toBe(0)
    const report = reportOf<Report>(lab, main)
    const [lost, kept] = lostAndKept(report, broken)
    expect(report.failovers?.[0]).toMatchObject({ builder: lost, movedTo: [kept] })
    expect(report.derivations.find(d => d.name === drv.name)?.machine).toBe(kept)
    expect(report.confirmed).toBe(true)
    expect(main.summary).toContain('### Failover')
    expect(main.summary).toContain(lost)
  }, 240_000)

  it('a builder frozen mid-build (sshd and nix-daemon stopped): its work goes to the other builder', async () => {
    const drv = freshDerivation(lab, { seconds: 20 })
    const { main, broken } = await breakMidBuild(
      { ...twoBuilders(strategy), args: drv.args, installables: 'drv' },
      drv.nonce,
      { breakIt: name => signalBuilder(name, 'STOP'), mend: name => signalBuilder(name, 'CONT') }
    )
    expect(main.code, visibleLog(main)).toBe(0)
    const report = reportOf<Report>(lab, main)
    const [lost, kept] = lostAndKept(report, broken)
    expect(report.failovers?.[0]?.builder).toBe(lost)
    expect(report.derivations.find(d => d.name === drv.name)?.machine).toBe(kept)
  }, 300_000)

  it('the only builder lost, with `fallback: local`: built on the runner, confirmed false', async () => {
    const drv = freshDerivation(lab, { seconds: 20 })
    const { main } = await breakMidBuild(
      { ...builderInputs(lab, 'a'), strategy, fallback: 'local', args: drv.args, installables: 'drv' },
      drv.nonce,
      { breakIt: name => builderCtl(lab, 'stop', name), mend: name => builderCtl(lab, 'start', name) }
    )
    expect(main.code, visibleLog(main)).toBe(0)
    expect(main.outputs).toMatchObject({ confirmed: 'false', 'local-builds': '1' })
    const report = reportOf<Report>(lab, main)
    expect(report.failovers?.[0]?.movedTo).toEqual(['local'])
    expect(report.derivations.find(d => d.name === drv.name)?.machine).toBe('local')
    expect(visibleLog(main)).toContain('Building the rest on the runner')
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
