import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { actionlint } from './support/actionlint.js'

const ROOT = join(import.meta.dirname, '..', '..')
const EXAMPLES = join(ROOT, 'examples')
const files = readdirSync(EXAMPLES).filter(name => name.endsWith('.yml'))

/** The actions of this repository, by the folder of their action.yml: the main one, and the canary. */
const ACTIONS = [
  { dir: '', uses: 'nix-offload/nix-offload@' },
  { dir: 'canary', uses: 'nix-offload/nix-offload/canary@' }
]

/** Each step that uses one of this repository's actions: the folder of its action.yml, and the inputs it gives. */
function actionInputs(workflow: unknown): { dir: string; inputs: string[] }[] {
  const found: { dir: string; inputs: string[] }[] = []
  const jobs = isRecord(workflow) && isRecord(workflow.jobs) ? Object.values(workflow.jobs) : []
  for (const job of jobs) {
    const steps = isRecord(job) && Array.isArray(job.steps) ? job.steps : []
    for (const step of steps) {
      const action = ACTIONS.find(({ uses }) => isRecord(step) && String(step.uses).startsWith(uses))
      if (isRecord(step) && action !== undefined) {
        found.push({ dir: action.dir, inputs: isRecord(step.with) ? Object.keys(step.with) : [] })
      }
    }
  }
  return found
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

function declaredInputs(dir: string): string[] {
  const action: unknown = parse(readFileSync(join(ROOT, dir, 'action.yml'), 'utf8'))
  return isRecord(action) && isRecord(action.inputs) ? Object.keys(action.inputs) : []
}

describe('examples/', () => {
  it('has the CI-step, heavy-override and canary workflows', () => {
    expect(files.sort()).toEqual(['canary.yml', 'ci-step.yml', 'heavy-override.yml'])
  })

  it.each(files)('%s passes actionlint', async name => {
    expect(await actionlint(readFileSync(join(EXAMPLES, name), 'utf8'), name)).toEqual([])
  })

  it('actionlint does catch a broken workflow (the check can fail)', async () => {
    const broken =
      'on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ secrets }\n'
    expect((await actionlint(broken, 'broken.yml')).length).toBeGreaterThan(0)
  })

  it.each(files)('%s gives the action only inputs that its action.yml declares', name => {
    const steps = actionInputs(parse(readFileSync(join(EXAMPLES, name), 'utf8')))
    expect(steps.length).toBeGreaterThan(0)
    for (const { dir, inputs } of steps)
      for (const input of inputs) expect(declaredInputs(dir)).toContain(input)
  })

  it('canary.yml uses the canary action', () => {
    const steps = actionInputs(parse(readFileSync(join(EXAMPLES, 'canary.yml'), 'utf8')))
    expect(steps.map(step => step.dir)).toEqual(['canary'])
  })

  it('action.yml and canary/action.yml run on node24, each its own main, with the post step that always runs', () => {
    const runs = (dir: string): unknown => {
      const action: unknown = parse(readFileSync(join(ROOT, dir, 'action.yml'), 'utf8'))
      return isRecord(action) ? action.runs : undefined
    }
    expect(runs('')).toEqual({
      using: 'node24',
      main: 'dist/main/index.js',
      post: 'dist/post/index.js',
      'post-if': 'always()'
    })
    expect(runs('canary')).toEqual({
      using: 'node24',
      main: '../dist/canary/index.js',
      post: '../dist/post/index.js',
      'post-if': 'always()'
    })
  })
})
