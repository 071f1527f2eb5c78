// A container job of a workflow, read for scripts/ci-in-container.sh, which runs its steps as the runner would:
//
//   node scripts/ci-job.mjs WORKFLOW JOB DIR
//       writes DIR/image and DIR/options (the job's `container:`), DIR/steps (one line a step: kind, number, name and,
//       for a `uses:` step, the action, separated by tabs) and DIR/N.sh, the script of each `run:` step N
//
// A key the script does not honour (a step's `env:`, `if:` or `shell:`, a job's `env:` or `defaults:`, an expression
// in a script) is refused here, so that a workflow that grows one fails the script instead of running otherwise there.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import console from 'node:console'
import process from 'node:process'
import { parse } from 'yaml'

const JOB_KEYS = new Set(['name', 'runs-on', 'timeout-minutes', 'container', 'steps'])
const STEP_KEYS = new Set(['name', 'id', 'run', 'uses', 'with'])

function isRecord(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Step `index` (from 1) of `jobId`, as `{ name, run }` or `{ name, uses, with }`. */
function readStep(step, index, jobId) {
  const where = `step ${index} of job '${jobId}'`
  if (!isRecord(step)) throw new Error(`${where} is not a mapping`)
  for (const key of Object.keys(step)) {
    if (!STEP_KEYS.has(key))
      throw new Error(`${where} has '${key}', which scripts/ci-in-container.sh does not honour`)
  }
  if ((typeof step.run === 'string') === (typeof step.uses === 'string')) {
    throw new Error(`${where} needs exactly one of 'run' and 'uses'`)
  }
  if (typeof step.run === 'string') {
    if (step.run.includes('${{')) {
      throw new Error(
        `${where} has an expression in its script, which scripts/ci-in-container.sh cannot evaluate`
      )
    }
    const name = typeof step.name === 'string' ? step.name : `Run ${step.run.trim().split('\n')[0]}`
    return { name, run: step.run }
  }
  const name = typeof step.name === 'string' ? step.name : `Run ${step.uses}`
  return { name, uses: step.uses, with: isRecord(step.with) ? step.with : {} }
}

/**
 * Job `jobId` of the workflow `text`: its container's image and options, and its steps in order. Throws, naming the
 * job and the step, on anything scripts/ci-in-container.sh would not run as the runner does.
 */
export function containerJob(text, jobId) {
  const workflow = parse(text)
  if (!isRecord(workflow) || !isRecord(workflow.jobs)) throw new Error('the workflow has no jobs')
  const job = workflow.jobs[jobId]
  if (!isRecord(job)) throw new Error(`the workflow has no job '${jobId}'`)
  for (const key of Object.keys(job)) {
    if (!JOB_KEYS.has(key))
      throw new Error(`job '${jobId}' has '${key}', which scripts/ci-in-container.sh does not honour`)
  }
  const { container } = job
  if (!isRecord(container) || typeof container.image !== 'string') {
    throw new Error(`job '${jobId}' has no 'container:' with an 'image'`)
  }
  if (!Array.isArray(job.steps) || job.steps.length === 0) throw new Error(`job '${jobId}' has no steps`)
  return {
    image: container.image,
    options: typeof container.options === 'string' ? container.options : '',
    steps: job.steps.map((step, index) => readStep(step, index + 1, jobId))
  }
}

/** Writes `job` into `dir` as the header above describes. */
export function writeJob(job, dir) {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'image'), `${job.image}\n`)
  writeFileSync(join(dir, 'options'), `${job.options}\n`)
  const oneLine = text => text.replace(/[\t\r\n]+/g, ' ')
  const lines = job.steps.map((step, index) => {
    const number = index + 1
    if (step.run === undefined) return ['uses', number, oneLine(step.name), step.uses].join('\t')
    writeFileSync(join(dir, `${number}.sh`), step.run)
    return ['run', number, oneLine(step.name)].join('\t')
  })
  writeFileSync(join(dir, 'steps'), `${lines.join('\n')}\n`)
}

function main(argv) {
  const [workflow, jobId, dir] = argv
  if (workflow === undefined || jobId === undefined || dir === undefined || argv.length !== 3) {
    console.error('usage: node scripts/ci-job.mjs WORKFLOW JOB DIR')
    return 2
  }
  try {
    writeJob(containerJob(readFileSync(workflow, 'utf8'), jobId), dir)
  } catch (error) {
    console.error(`ci-job.mjs: ${workflow}: ${error instanceof Error ? error.message : String(error)}`)
    return 1
  }
  return 0
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2))
}
