/**
 * The whole action as the runner runs it: dist/main, then dist/post with main's state, as the runner user, against
 * one lab builder. Set-up, preflight, build, proof, copy back (remote-store) and undo are all in the time.
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  builderInputs,
  hostPath,
  ROOT,
  type Lab,
  type LabBuilder,
  runMain,
  runPost,
  type StepResult
} from '../__tests__/lab/harness.js'
import type { Expression } from './seed.js'

/** The action's `strategy` input; `auto` is its default. */
export type Strategy = 'auto' | 'hook' | 'remote-store'

export function parseStrategies(text: string): Strategy[] {
  return text.split(',').map(value => {
    if (value === 'auto' || value === 'hook' || value === 'remote-store') return value
    throw new Error(`--strategy: "${value}" is not auto, hook or remote-store (comma-separate several)`)
  })
}

export interface ActionRun {
  ms: number
  main: StepResult
  /** What the report says it chose, when the bundle reports a strategy. */
  chose: string | undefined
  /** NAR bytes the report says went to and came from the builders, when the bundle counts them. */
  reported: { sent: number; received: number } | undefined
}

/** What a benchmark may add to a run of the action. */
export interface ActionExtras {
  /** More inputs, e.g. one that only some bundles know. */
  inputs?: Record<string, string>
  /** A command of the host's around each step (StepOptions.wrap), e.g. to measure its processes. */
  wrap?: (entry: 'main' | 'post') => string[]
}

/**
 * Runs the action on `expr` with `strategy`, checks that every derivation was proven remote, that the outputs are on
 * the runner, and (when the report names one) that the strategy asked for was used. `built` is how many derivations
 * the build runs.
 */
export async function runAction(
  lab: Lab,
  b: LabBuilder,
  strategy: Strategy,
  expr: Expression,
  maxJobs: number,
  built: number,
  extras: ActionExtras = {}
): Promise<ActionRun> {
  const started = performance.now()
  const main = await runMain(
    lab,
    {
      ...builderInputs(lab, b.name),
      port: String(b.port),
      'max-jobs': String(maxJobs),
      strategy,
      args: expr.args.join(' '),
      installables: expr.attributes.join('\n'),
      ...extras.inputs
    },
    { wrap: extras.wrap?.('main') }
  )
  const post = await runPost(lab, main, { wrap: extras.wrap?.('post') })
  const ms = performance.now() - started
  const log = `${main.stdout}\n${main.stderr}`
  if (main.code !== 0 || post.code !== 0)
    throw new Error(
      `the action (strategy ${strategy}) failed: ${firstError(log + post.stdout)}\n${log}\n${post.stdout}\n${post.stderr}`
    )
  if (main.outputs['remote-builds'] !== String(built))
    throw new Error(
      `the action (strategy ${strategy}) proved ${main.outputs['remote-builds']} remote builds, not ${built}:\n${log}`
    )
  const outPaths = (main.outputs['out-paths'] ?? '').split('\n').filter(path => path !== '')
  const missing = outPaths.filter(path => !existsSync(hostPath(lab, path)))
  if (outPaths.length === 0 || missing.length > 0)
    throw new Error(`the action (strategy ${strategy}) left outputs off the runner: ${missing.join(' ')}`)
  const chose = reportedStrategy(lab, main)
  // A bundle from before the `strategy` input ignores it and runs the hook: that must not pass for remote-store.
  if (chose === undefined && strategy === 'remote-store')
    throw new Error('the bundled action reports no strategy: rebuild dist/ with the `strategy` input')
  if (chose !== undefined && strategy !== 'auto' && chose !== strategy)
    throw new Error(`the action was asked for strategy ${strategy} and reports ${chose}`)
  return { ms, main, chose, reported: reportedBytes(lab, main) }
}

/** The step's `::error` annotations, decoded, on one line. */
function firstError(log: string): string {
  const errors = [...log.matchAll(/^::error[^:]*::(.*)$/gm)].map(match =>
    (match[1] ?? '').replace(/%0A/g, ' ').replace(/%0D/g, '').replace(/%25/g, '%')
  )
  return errors.length > 0 ? errors.join(' | ') : 'no ::error annotation'
}

interface ReportFields {
  strategy?: unknown
  builders?: { bytesSent?: unknown; bytesReceived?: unknown }[]
}

function readReport(lab: Lab, main: StepResult): ReportFields {
  const file = main.outputs.report
  if (file === undefined || !existsSync(hostPath(lab, file))) return {}
  return JSON.parse(readFileSync(hostPath(lab, file), 'utf8')) as ReportFields
}

/** The strategy in the action's report, if it has one (bundles before the `strategy` input do not). */
function reportedStrategy(lab: Lab, main: StepResult): string | undefined {
  const { strategy } = readReport(lab, main)
  return typeof strategy === 'string' ? strategy : undefined
}

/** The bytes the report counts for all builders, if it counts them. */
function reportedBytes(lab: Lab, main: StepResult): { sent: number; received: number } | undefined {
  const builders = readReport(lab, main).builders ?? []
  if (!builders.some(b => typeof b.bytesReceived === 'number')) return undefined
  const sum = (pick: (b: { bytesSent?: unknown; bytesReceived?: unknown }) => unknown): number =>
    builders.reduce((total, b) => total + (typeof pick(b) === 'number' ? Number(pick(b)) : 0), 0)
  return { sent: sum(b => b.bytesSent), received: sum(b => b.bytesReceived) }
}

/**
 * The first 12 hex digits of the SHA-256 of the dist/main the runner runs, printed with the figures: the bundle
 * changes as src/ does. A runner in a root filesystem runs loadLab()'s copy under its /opt/nix-offload, which a lab
 * test started meanwhile overwrites with its own checkout's.
 */
export function bundleId(lab: Lab): string {
  const file =
    lab.runner.root === ''
      ? join(ROOT, 'dist/main/index.js')
      : hostPath(lab, '/opt/nix-offload/dist/main/index.js')
  return createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 12)
}
