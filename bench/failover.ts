/**
 * The time lost to a builder that dies halfway through a build, on the lab (run as root; the lab is up):
 *
 *   npx tsx bench/failover.ts [--derivations 50] [--seconds 2] [--runs 3] [--strategy hook,remote-store]
 *   LAB_RUNNER_NIX=2.34 LAB_BUILDER_NIX=2.34 npx tsx bench/failover.ts …
 *
 * Two builders, b and c (max-jobs 4 each), build `--derivations` fresh independent derivations that each sleep
 * `--seconds`. Three variants, each the whole action (main, then post) as the runner runs it, with fresh derivations:
 *
 * - healthy: nothing fails.
 * - failover: builder b is stopped (lab/builder.sh stop: its sshd, its nix-daemon and every session end at once) when
 *   half the derivations have started building; `retries` is its default, 1, so b's unfinished work goes to c.
 * - fail, then rerun: the same stop with `retries: 0`, so the step fails, as it would without failover; then the step
 *   again with c alone, as a user re-running the job would. Its time is both steps together.
 *
 * The variants alternate after one warm-up each; b is started again after each stop, outside the time. The medians
 * and their ratios are printed. Nothing here asserts a time.
 */
import {
  builder,
  builderCtl,
  builderInputs,
  loadLab,
  numberedDerivations,
  reportOf,
  runMain,
  runPost,
  startMainUntil,
  type StepResult
} from '../__tests__/lab/harness.js'
import { bundleId, parseStrategies, type Strategy } from './action.js'
import { median, option, printFailures, retried } from './seed.js'

const lab = loadLab()
const bundle = bundleId(lab)
const count = Number(option('--derivations', '50'))
const seconds = Number(option('--seconds', '2'))
const runs = Number(option('--runs', '3'))
const strategies = parseStrategies(option('--strategy', 'hook,remote-store'))
const MAX_JOBS = 4
const [LOST, KEPT] = ['b', 'c'] as const

interface Report {
  confirmed: boolean
  derivations: { name: string; machine: string }[]
  failovers?: { builder: string; movedTo: string[]; derivations: string[] }[]
}

type Work = ReturnType<typeof numberedDerivations>

/** Inputs for builders `names` (the first through the host inputs, the rest as `builders` lines). */
function inputs(
  strategy: Strategy,
  work: Work,
  names: readonly string[],
  extra: Record<string, string> = {}
) {
  const [first = LOST, ...rest] = names
  const others = rest.map(name => builder(lab, name))
  return {
    ...builderInputs(lab, first),
    strategy,
    'max-jobs': String(MAX_JOBS),
    ...(others.length > 0 && {
      builders: others
        .map(b => `ssh-ng://${b.user}@${b.host}:${b.port} ${lab.localSystem} - ${MAX_JOBS} 1 - -`)
        .join('\n'),
      'known-hosts': others.map(b => `[${b.host}]:${b.port} ${b.hostPublicKey}`).join('\n')
    }),
    args: work.args,
    installables: work.installables,
    ...extra
  }
}

/** Main then post, timed together; fails unless main ended with `code` and post undid everything. */
async function step(strategy: Strategy, work: Work, names: readonly string[], code = 0): Promise<StepResult> {
  const main = await runMain(lab, inputs(strategy, work, names))
  return finish(main, code)
}

async function finish(main: StepResult, code: number): Promise<StepResult> {
  const post = await runPost(lab, main)
  if ((main.code === 0) !== (code === 0) || post.code !== 0)
    throw new Error(
      `main ended ${main.code} (wanted ${code}), post ${post.code}:\n${main.stdout}\n${post.stdout}`
    )
  return main
}

/** Main with b stopped once half the derivations have started building there or on c (b stays stopped). */
async function stopHalfway(
  strategy: Strategy,
  work: Work,
  retries: string,
  code: number
): Promise<StepResult> {
  const started = (seen: string): number => seen.split(`building ${work.nonce}`).length - 1
  const running = await startMainUntil(
    lab,
    inputs(strategy, work, [LOST, KEPT], { retries }),
    seen => started(seen) >= Math.ceil(count / 2)
  )
  await builderCtl(lab, 'stop', LOST)
  return finish(await running.done, code)
}

/**
 * Every derivation the step built ran on a builder: all `count` of them, or (`some`, a rerun) those not already on the
 * runner; and (failover) b's loss is in the report with its work moved to c.
 */
function check(main: StepResult, options: { failedOver: boolean; some?: boolean }): void {
  const report = reportOf<Report>(lab, main)
  const remote = report.derivations.filter(d => d.machine.startsWith('ssh-ng://')).length
  const wanted = options.some === true ? report.derivations.length : count
  if (!report.confirmed || remote < Math.max(1, wanted))
    throw new Error(`confirmed ${report.confirmed}, ${remote} of ${wanted} derivations on a builder`)
  if (options.failedOver && (report.failovers?.length ?? 0) === 0)
    throw new Error('the report names no failover')
}

const HEALTHY = 'healthy'
const FAILOVER = 'failover (retries 1)'
const RERUN = 'fail (retries 0), then rerun on c'
const name = (strategy: Strategy, variant: string): string => `${strategy}: ${variant}`
type Variant = [name: string, measure: () => Promise<number>]

/** How long `measure` took; b is started again afterwards, outside the time (a rerun would not wait for it). */
function timed(measure: () => Promise<void>, restart = false): () => Promise<number> {
  return async () => {
    const started = performance.now()
    try {
      await measure()
      return performance.now() - started
    } finally {
      if (restart) await builderCtl(lab, 'start', LOST)
    }
  }
}

const variants: Variant[] = strategies.flatMap((strategy): Variant[] => {
  const work = (): Work => numberedDerivations(lab, count, { seconds })
  return [
    [
      name(strategy, HEALTHY),
      timed(async () => check(await step(strategy, work(), [LOST, KEPT]), { failedOver: false }))
    ],
    [
      name(strategy, FAILOVER),
      timed(async () => check(await stopHalfway(strategy, work(), '1', 0), { failedOver: true }), true)
    ],
    [
      name(strategy, RERUN),
      timed(async () => {
        const same = work()
        await stopHalfway(strategy, same, '0', 1)
        check(await step(strategy, same, [KEPT]), { failedOver: false, some: true })
      }, true)
    ]
  ]
})

const results = new Map<string, number[]>(variants.map(([variant]) => [variant, []]))
const failures = new Map<string, string[]>()
for (const [variant, measure] of variants) {
  const warm = await retried(variant, measure, failures)
  process.stderr.write(`warm-up: ${variant} ${(warm / 1000).toFixed(1)} s\n`)
}
for (let run = 0; run < runs; run++) {
  for (const [variant, measure] of variants)
    results.get(variant)?.push(await retried(variant, measure, failures))
  process.stderr.write(
    `run ${run + 1}/${runs}: ` +
      variants.map(([v]) => `${v} ${((results.get(v)?.at(-1) ?? 0) / 1000).toFixed(1)} s`).join(', ') +
      '\n'
  )
}

const ms = (variant: string): number => median(results.get(variant) ?? [])
const b = builder(lab, LOST)
console.log(
  `\n${count} fresh derivations of ${seconds} s each on builders ${LOST} and ${KEPT} (max-jobs ${MAX_JOBS} each), ` +
    `runner Nix ${lab.runner.nix}, builder Nix ${b.nix}, dist/main ${bundle}, medians of ${runs} runs, ` +
    `${LOST} stopped once ${Math.ceil(count / 2)} had started building:`
)
console.log(`  ${'variant'.padEnd(52)} ${'median s'.padStart(9)}   runs (s)`)
for (const [variant] of variants)
  console.log(
    `  ${variant.padEnd(52)} ${(ms(variant) / 1000).toFixed(2).padStart(9)}   ` +
      (results.get(variant) ?? []).map(v => (v / 1000).toFixed(2)).join(' ')
  )
for (const strategy of strategies) {
  const healthy = ms(name(strategy, HEALTHY))
  const failover = ms(name(strategy, FAILOVER))
  const rerun = ms(name(strategy, RERUN))
  console.log(
    `  ${strategy}: failover loses ${((failover - healthy) / 1000).toFixed(1)} s ` +
      `(${(failover / healthy).toFixed(2)}× healthy); fail-then-rerun loses ${((rerun - healthy) / 1000).toFixed(1)} s ` +
      `(${(rerun / healthy).toFixed(2)}× healthy); rerun / failover ${(rerun / failover).toFixed(2)}×`
  )
}
printFailures(failures)
if (bundleId(lab) !== bundle)
  console.log(`  warning: dist/main changed during the runs (was ${bundle}): rerun`)
