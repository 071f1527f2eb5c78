import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  builder,
  builderInputs,
  freshDerivation,
  type Lab,
  loadLab,
  numberedDerivations,
  reportOf,
  runMain,
  runPost,
  type StepResult,
  startMainUntil,
  visibleLog
} from './harness.js'

const lab: Lab = loadLab()
const a = builder(lab, 'a')
const b = builder(lab, 'b')

interface Report {
  strategy: string
  derivations: { name: string; machine: string; status: string }[]
  preflight: { builder: string; load?: { cores?: number; loadAverage?: number; runningBuilds?: number } }[]
}

const LABEL_A = `${a.user}@${a.host}:${a.port}`
const LABEL_B = `${b.user}@${b.host}:${b.port}`

/** Builders `a` (given first: today's routing and the hook's tie both pick it) and `b`, same system. */
function twoBuilders(strategy: 'hook' | 'remote-store'): Record<string, string> {
  return {
    ...builderInputs(lab, 'a'),
    builders: `ssh-ng://${b.user}@${b.host}:${b.port} ${lab.localSystem} - 1 1 - -`,
    'known-hosts': `[${b.host}]:${b.port} ${b.hostPublicKey}`,
    strategy
  }
}

/**
 * The lab's builders share the host's kernel, so their load averages are one and the same: `a` is made busy with
 * builds in its own store instead, which its daemon runs as its own build users (counted per builder). Its daemon
 * runs at most its own `max-jobs` at once, so that many: while the host's load average stays below it, they decide
 * `a`'s busyness.
 */
const busyBuilds = a.maxJobs
let busy: { done: Promise<StepResult> } | undefined

beforeAll(async () => {
  const slow = numberedDerivations(lab, busyBuilds, { seconds: 60 })
  const step = await startMainUntil(
    lab,
    {
      ...builderInputs(lab, 'a'),
      strategy: 'remote-store',
      'max-jobs': String(busyBuilds),
      args: slow.args,
      installables: slow.installables
    },
    `building ${slow.nonce}`
  )
  busy = step
  // Every slow build running, not only the first.
  await new Promise(resolve => setTimeout(resolve, 5000))
}, 180_000)

afterAll(async () => {
  const main = await busy?.done
  if (main !== undefined) expect((await runPost(lab, main)).code).toBe(0)
}, 300_000)

/** Main then post for a fresh derivation on builders a and b; checks where it was built and what the summary says. */
async function buildBeside(strategy: 'hook' | 'remote-store'): Promise<void> {
  const drv = freshDerivation(lab)
  const main = await runMain(lab, { ...twoBuilders(strategy), args: drv.args, installables: 'drv' })
  try {
    expect(main.code, visibleLog(main)).toBe(0)
    const report = reportOf<Report>(lab, main)
    const loadOf = (label: string): Report['preflight'][number]['load'] =>
      report.preflight.find(entry => entry.builder === label)?.load
    expect(loadOf(LABEL_A)?.runningBuilds).toBeGreaterThanOrEqual(busyBuilds)
    // Less busy than a, not idle: a build another test's post step is still stopping on b may be counted too.
    expect(loadOf(LABEL_B)?.runningBuilds).toBeLessThan(loadOf(LABEL_A)?.runningBuilds ?? 0)
    expect(report.derivations).toEqual([
      expect.objectContaining({ name: drv.name, status: 'built', machine: expect.stringMatching(/-2$/) })
    ])
    expect(main.summary).toMatch(
      new RegExp(
        `Builders by free capacity, cores / \\(1 \\+ load\\), most first: \`${LABEL_B.replace(/[.]/g, '\\.')}\` `
      )
    )
  } finally {
    expect((await runPost(lab, main)).code).toBe(0)
  }
}

describe('builders chosen by load', () => {
  it('remote-store sends a fresh derivation to b while a is busy, and the summary says why', async () => {
    await buildBeside('remote-store')
  }, 300_000)

  it("the hook's machines file gives the busy a the lower speed-factor, so the derivation goes to b", async () => {
    await buildBeside('hook')
  }, 300_000)
})
