import { randomBytes, randomInt } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  builderInputs,
  chownTree,
  hostPath,
  type Lab,
  loadLab,
  restartRunnerDaemon,
  runMain,
  runPost,
  sshMasters,
  startMainUntil,
  type StepResult,
  visibleLog,
  withinTime
} from './harness.js'
import { watchFiles } from './setup.js'

/**
 * Several jobs on one self-hosted runner at once, each a whole main + post, overlapping in every way: nested, crossing,
 * started at the same instant, and at random. Each job builds a chain of derivations, so it opens a new SSH session
 * to the builder through its alias well after it started: had another job's post step removed its block (or the key),
 * that build would fail. After the last post every watched file is byte-identical to before the first job.
 */

const lab: Lab = loadLab()
const NIX_CONF = hostPath(lab, '/etc/nix/nix.conf')

interface Chain {
  args: string
  /** A line each derivation prints when it starts: `<name>-<n>> started`. */
  started: (n: number) => string
}

/** `count` derivations, each waiting for the one before, each sleeping `seconds`. */
function chain(count: number, seconds: number): Chain {
  const nonce = randomBytes(6).toString('hex')
  const dir = mkdtempSync(hostPath(lab, '/tmp/nix-offload-expr-')).slice(lab.runner.root.length)
  writeFileSync(
    hostPath(lab, join(dir, 'default.nix')),
    `{ nonce, system }:
let
  step = n: previous: builtins.derivation {
    name = "nix-offload-chain-\${nonce}-\${toString n}";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "echo started; /bin/sleep ${seconds}; echo \${nonce} \${toString n} \${previous} > $out" ];
  };
  build = n: if n == 1 then step 1 "" else step n (build (n - 1));
in { last = build ${count}; }
`
  )
  chownTree(hostPath(lab, dir), lab.runnerUser)
  return {
    args: `-f ${join(dir, 'default.nix')} --argstr nonce ${nonce} --argstr system ${lab.localSystem}`,
    started: n => `nix-offload-chain-${nonce}-${n}> started`
  }
}

function inputsFor(work: Chain): Record<string, string> {
  return { ...builderInputs(lab, 'a'), args: work.args, installables: 'last' }
}

interface Job {
  main: StepResult
  post: StepResult
  /** When its post step ended, in ms since the scenario started. */
  postEnded: number
  mainEnded: number
}

const clock = (): (() => number) => {
  const start = Date.now()
  return () => Date.now() - start
}

/** A main step's result with the moment it ended, taken when it ends, not when the scenario gets round to it. */
interface Ended {
  result: StepResult
  at: number
}

function stamped(main: Promise<StepResult>, now: () => number): Promise<Ended> {
  return main.then(result => ({ result, at: now() }))
}

async function finish(main: Promise<Ended>, now: () => number): Promise<Job> {
  const { result, at } = await main
  const post = await runPost(lab, result)
  return { main: result, post, mainEnded: at, postEnded: now() }
}

function expectConfirmed(job: Job, derivations: number): void {
  expect(job.main.code, visibleLog(job.main)).toBe(0)
  expect(job.main.outputs.confirmed).toBe('true')
  expect(job.main.outputs['remote-builds']).toBe(String(derivations))
  expect(job.post.code, job.post.stdout).toBe(0)
  expect(job.post.stdout).not.toContain('::warning')
  expect(job.post.stdout).toMatch(/nix-offload: undid \d+ change\(s\)/)
}

/** Runs `scenario`, then checks every watched file is as it was and no SSH master is left. */
async function isolated(scenario: () => Promise<Job[]>): Promise<Job[]> {
  const filesKept = watchFiles(lab)
  const mastersBefore = await sshMasters(lab)
  const jobs = await scenario()
  filesKept()
  expect(await sshMasters(lab)).toBe(mastersBefore)
  // Each post step says the runner is as it was, or, when it saw another job's block in a shared file at the
  // moment it took its own away, that it left that block alone (posts that overlap may both say so).
  for (const job of jobs)
    expect(job.post.stdout).toMatch(
      /the runner is as it was before the action|are theirs, and were left alone/
    )
  return jobs
}

async function nested(): Promise<Job[]> {
  const now = clock()
  // A's derivations take long enough that B, main and post, fits in the first one on a busy machine too.
  const outer = chain(2, 6)
  const a = await startMainUntil(lab, inputsFor(outer), outer.started(1))
  const aEnded = stamped(a.done, now)
  const inner = chain(1, 0.5)
  const b = await finish(stamped(runMain(lab, inputsFor(inner)), now), now)
  const jobA = await finish(aEnded, now)
  // B came and went while A built its first derivation; A's second one went through A's alias after B's post.
  expect(b.postEnded).toBeLessThan(jobA.mainEnded)
  expect(b.post.stdout).toMatch(
    /Other jobs' blocks \(\d+ in [^)]*config[^)]*\) are theirs, and were left alone/
  )
  expectConfirmed(b, 1)
  expectConfirmed(jobA, 2)
  return [b, jobA]
}

async function crossing(): Promise<Job[]> {
  const now = clock()
  const first = chain(1, 2)
  const a = await startMainUntil(lab, inputsFor(first), first.started(1))
  const aEnded = stamped(a.done, now)
  // B's derivations take long enough that A's post, too, ends while B builds, on a busy machine too.
  const second = chain(2, 5)
  const b = await startMainUntil(lab, inputsFor(second), second.started(1))
  const bEnded = stamped(b.done, now)
  const jobA = await finish(aEnded, now)
  const jobB = await finish(bEnded, now)
  // A ended, post step and all, while B still built: B's second derivation needed B's block after A's post.
  expect(jobA.postEnded).toBeLessThan(jobB.mainEnded)
  expectConfirmed(jobA, 1)
  expectConfirmed(jobB, 2)
  return [jobA, jobB]
}

async function together(count: number): Promise<Job[]> {
  const now = clock()
  const works = Array.from({ length: count }, () => chain(2, 1))
  const jobs = await Promise.all(works.map(work => finish(stamped(runMain(lab, inputsFor(work)), now), now)))
  for (const job of jobs) expectConfirmed(job, 2)
  return jobs
}

async function random(count: number): Promise<Job[]> {
  const now = clock()
  const jobs = await Promise.all(
    Array.from({ length: count }, async () => {
      await new Promise(resolve => setTimeout(resolve, randomInt(0, 3000)))
      const work = chain(2, randomInt(2, 9) / 4)
      return finish(stamped(runMain(lab, inputsFor(work)), now), now)
    })
  )
  for (const job of jobs) expectConfirmed(job, 2)
  return jobs
}

/** Each path the action can take on a daemon: the runner user trusted (NIX_CONFIG) or not (the daemon's machines file). */
const paths: { name: string; untrusted: boolean }[] = [
  { name: 'trusted runner user (trusted-client)', untrusted: false },
  { name: "untrusted runner user (the daemon's machines file, shared)", untrusted: true }
]

/**
 * Each scenario runs within a bound of its own, and vitest's timeout leaves a minute beyond it for the post steps and
 * the clean-up that follow when the bound stops its jobs (see withinTime). A scenario repeated to shake out races is
 * one test per round, so that each round's time is bounded, not the sum of three on a slow machine.
 */
const CLEAN_UP_MS = 60_000
const ROUNDS = [1, 2, 3]

describe.each(paths)('jobs sharing one runner: $name', ({ untrusted }) => {
  /** The scenario on this path, within `ms`, checked for files and SSH masters left behind. */
  const run = (ms: number, scenario: () => Promise<Job[]>) => async (): Promise<void> => {
    if (!untrusted) {
      await withinTime(ms, () => isolated(scenario))
      return
    }
    const original = readFileSync(NIX_CONF)
    writeFileSync(NIX_CONF, original.toString().replace(/^trusted-users = .*$/m, 'trusted-users = root'))
    await restartRunnerDaemon(lab)
    try {
      const jobs = await withinTime(ms, () => isolated(scenario))
      for (const job of jobs) expect(job.main.stdout).toContain('(machines-file)')
    } finally {
      writeFileSync(NIX_CONF, original)
      await restartRunnerDaemon(lab)
    }
  }

  it('nested: B starts and ends while A builds', run(120_000, nested), 120_000 + CLEAN_UP_MS)
  it(
    "crossing: A ends while B still builds, and A's post leaves B's block alone",
    run(120_000, crossing),
    120_000 + CLEAN_UP_MS
  )
  it.each(ROUNDS)(
    'two jobs started at the same instant, round %i of 3',
    async () => run(150_000, () => together(2))(),
    150_000 + CLEAN_UP_MS
  )
  it.each(ROUNDS)(
    'four jobs with random start times and durations, round %i of 3',
    async () => run(200_000, () => random(4))(),
    200_000 + CLEAN_UP_MS
  )
})

describe('a scenario that runs past its bound', () => {
  it('has its jobs stopped, and their post steps leave the runner as it was', async () => {
    const now = clock()
    const work = chain(1, 90)
    const scenario = async (): Promise<Job[]> => [
      await finish(stamped(runMain(lab, inputsFor(work)), now), now)
    ]
    const started = Date.now()
    await expect(withinTime(25_000, () => isolated(scenario))).rejects.toThrow(
      /^the scenario ran past 25 s: its main steps were stopped, and their post steps ran\n--- a stopped main step.s last lines:\n(?![^]*--- then:)/
    )
    // Stopped, not waited for: the build alone would have taken 90 s.
    expect(Date.now() - started).toBeLessThan(75_000)
  }, 120_000)
})
