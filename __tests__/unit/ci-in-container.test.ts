import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { containerJob } from '../../scripts/ci-job.mjs'

/**
 * scripts/ci-in-container.sh runs ci.yml's test-all job here, its steps read from ci.yml by scripts/ci-job.mjs: these
 * check the reading, and that the script emulates every action the job uses.
 */

const ROOT = join(import.meta.dirname, '..', '..')
const CI = readFileSync(join(ROOT, '.github', 'workflows', 'ci.yml'), 'utf8')
const SCRIPT = readFileSync(join(ROOT, 'scripts', 'ci-in-container.sh'), 'utf8')
const work = mkdtempSync(join(tmpdir(), 'ci-job-test-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

/** A workflow whose job `j` runs in debian:12 and has `steps` (YAML lines, indented for a job's steps). */
function workflow(steps: string[], jobExtra: string[] = []): string {
  return [
    'on: push',
    'jobs:',
    '  j:',
    '    runs-on: ubuntu-latest',
    '    container:',
    '      image: debian:12',
    '      options: --privileged',
    ...jobExtra,
    '    steps:',
    ...steps
  ].join('\n')
}

describe("scripts/ci-job.mjs reads ci.yml's test-all job", () => {
  const job = containerJob(CI, 'test-all')

  it('as a privileged debian:12 container whose steps end with the README test command', () => {
    expect(job.image).toBe('debian:12')
    expect(job.options).toBe('--privileged')
    expect(job.steps.at(-1)).toEqual({ name: 'bash scripts/test-all.sh', run: 'bash scripts/test-all.sh' })
  })

  it('with every step in order: git first, then the checkout, Node.js, safe.directory and the test command', () => {
    const kinds = job.steps.map(step => ('run' in step ? 'run' : step.uses.split('@')[0]))
    expect(kinds).toEqual(['run', 'actions/checkout', 'actions/setup-node', 'run', 'run'])
    expect(job.steps[3]).toEqual({
      name: 'Run git config --system --add safe.directory "$GITHUB_WORKSPACE"',
      run: 'git config --system --add safe.directory "$GITHUB_WORKSPACE"'
    })
  })

  it('and scripts/ci-in-container.sh emulates every action the job uses', () => {
    const emulated = [...SCRIPT.matchAll(/^\s+([\w.-]+\/[\w.-]+)@\*\)/gm)].map(([, action]) => action)
    expect(emulated.length).toBeGreaterThan(0)
    for (const step of job.steps) if ('uses' in step) expect(emulated).toContain(step.uses.split('@')[0])
  })

  it('the script runs that job of that workflow', () => {
    expect(SCRIPT).toContain('workflow=.github/workflows/ci.yml\njob=test-all\n')
  })
})

describe('scripts/ci-job.mjs refuses what ci-in-container.sh would not run as the runner does', () => {
  it.each([
    [
      'a step with env',
      ['      - run: echo "$X"', '        env:', '          X: y'],
      "step 1 of job 'j' has 'env'"
    ],
    ['a step with if', ['      - run: "true"', '        if: always()'], "step 1 of job 'j' has 'if'"],
    ['a step with a shell', ['      - run: "true"', '        shell: sh'], "step 1 of job 'j' has 'shell'"],
    [
      'an expression in a script',
      ['      - run: echo ${{ github.sha }}'],
      "step 1 of job 'j' has an expression in its script"
    ],
    ['a step with neither run nor uses', ['      - name: nothing'], 'needs exactly one of']
  ])('%s', (_what, steps, message) => {
    expect(() => containerJob(workflow(steps), 'j')).toThrow(message)
  })

  it('a job with env or defaults, a job that is not there, a job without a container', () => {
    const step = ['      - run: "true"']
    expect(() => containerJob(workflow(step, ['    env:', '      X: y']), 'j')).toThrow("job 'j' has 'env'")
    expect(() =>
      containerJob(workflow(step, ['    defaults:', '      run:', '        shell: sh']), 'j')
    ).toThrow("job 'j' has 'defaults'")
    expect(() => containerJob(workflow(step), 'nope')).toThrow("the workflow has no job 'nope'")
    const bare = 'on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n      - run: "true"\n'
    expect(() => containerJob(bare, 'j')).toThrow("job 'j' has no 'container:'")
  })
})

describe('node scripts/ci-job.mjs WORKFLOW JOB DIR', () => {
  it('writes the container, the step list and each run step, as ci-in-container.sh reads them', () => {
    const dir = join(work, 'job')
    const run = spawnSync('node', [
      join(ROOT, 'scripts', 'ci-job.mjs'),
      join(ROOT, '.github/workflows/ci.yml'),
      'test-all',
      dir
    ])
    expect(run.status).toBe(0)
    expect(readFileSync(join(dir, 'image'), 'utf8')).toBe('debian:12\n')
    expect(readFileSync(join(dir, 'options'), 'utf8')).toBe('--privileged\n')
    const job = containerJob(CI, 'test-all')
    const lines = readFileSync(join(dir, 'steps'), 'utf8').trimEnd().split('\n')
    expect(lines).toHaveLength(job.steps.length)
    job.steps.forEach((step, index) => {
      const [kind, number, name, action] = lines[index]?.split('\t') ?? []
      expect([kind, number, name]).toEqual(['run' in step ? 'run' : 'uses', String(index + 1), step.name])
      if ('run' in step) expect(readFileSync(join(dir, `${index + 1}.sh`), 'utf8')).toBe(step.run)
      else expect(action).toBe(step.uses)
    })
  })

  it('fails, naming the workflow and the cause, on a job it refuses', () => {
    const file = join(work, 'bad.yml')
    writeFileSync(file, workflow(['      - run: "true"', '        if: always()']))
    const run = spawnSync('node', [join(ROOT, 'scripts', 'ci-job.mjs'), file, 'j', join(work, 'bad')], {
      encoding: 'utf8'
    })
    expect(run.status).toBe(1)
    expect(run.stderr).toContain(`ci-job.mjs: ${file}: step 1 of job 'j' has 'if'`)
  })
})
