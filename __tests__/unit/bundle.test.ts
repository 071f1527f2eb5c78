import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, normalize } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'

const ROOT = join(import.meta.dirname, '..', '..')
const read = (...parts: string[]): string => readFileSync(join(ROOT, ...parts), 'utf8')

/** The files an action.yml runs (`runs.main`, `runs.post`), as paths from the repository's root. */
function entriesOf(actionYml: string): string[] {
  const { runs } = parse(read(actionYml)) as { runs: Record<string, unknown> }
  return ['main', 'post'].flatMap(key =>
    typeof runs[key] === 'string' ? [normalize(join(dirname(actionYml), runs[key]))] : []
  )
}

/** The bundles scripts/bundle.sh makes: each `ncc build <source> -o <dist folder>`. */
function bundled(): { source: string; output: string }[] {
  return [...read('scripts', 'bundle.sh').matchAll(/^"\$ncc" build (\S+) -o (\S+) /gm)].map(
    ([, source = '', output = '']) => ({ source, output })
  )
}

/**
 * Each action.yml names files in dist/: a workflow that uses the action runs them as committed, and nothing builds
 * them there. So each must be a bundle that `npm run bundle` makes from a source in src/, and be in dist/ (the
 * check-dist workflow then keeps it the bundle of today's source), as an ES module bundle like the others.
 */
describe('the entries the actions run', () => {
  const actions = ['action.yml', 'canary/action.yml']
  const named = [...new Set(actions.flatMap(entriesOf))].sort()

  it('are main and post for the build, the canary bundle and the same post for the canary', () => {
    expect(entriesOf('action.yml')).toEqual(['dist/main/index.js', 'dist/post/index.js'])
    expect(entriesOf('canary/action.yml')).toEqual(['dist/canary/index.js', 'dist/post/index.js'])
    expect(bundled().map(({ output }) => output)).toEqual([
      'dist/main',
      'dist/canary',
      'dist/post',
      'dist/agent'
    ])
  })

  it.each(named)('%s is made by npm run bundle from a source in src/, and is in dist/', entry => {
    const made = bundled().find(({ output }) => join(output, 'index.js') === entry)
    expect(made, `scripts/bundle.sh makes no ${entry}`).toBeDefined()
    expect(existsSync(join(ROOT, made?.source ?? '')), made?.source).toBe(true)
    expect(existsSync(join(ROOT, entry)), `${entry}: run npm run bundle`).toBe(true)
    expect(JSON.parse(read(dirname(entry), 'package.json'))).toEqual({ type: 'module' })
  })

  it("are each an entry of package.json's sideEffects, so that no bundler drops their top-level code as unused", () => {
    const { sideEffects } = JSON.parse(read('package.json')) as { sideEffects: string[] }
    for (const { source } of bundled()) expect(sideEffects).toContain(`./${source}`)
  })
})

/**
 * @actions/core imports its HTTP client (and with it undici, about a megabyte) only for OIDC tokens; package.json's
 * override gives core the stand-in in vendor/no-http-client, so each step starts about 35 ms sooner. @actions/cache,
 * loaded only when the canary reads its history, keeps the real client.
 */
describe('the bundles', () => {
  it('load no HTTP client in main, post, or the canary before it reads its history', () => {
    for (const entry of ['main', 'post', 'canary']) {
      const bundle = read('dist', entry, 'index.js')
      expect(bundle, entry).not.toMatch(/undici/i)
    }
  })

  it("keep the real client in the canary's chunk that @actions/cache loads, and the build has no such chunk", () => {
    const chunks = (entry: string): string[] =>
      readdirSync(join(ROOT, 'dist', entry)).filter(name => /^\d+\.index\.js$/.test(name))
    expect(chunks('main')).toEqual([])
    expect(chunks('canary')).toHaveLength(1)
    const chunk = read('dist', 'canary', chunks('canary')[0] ?? '')
    expect(chunk).toMatch(/undici/)
  })

  it('post loads its undo code, the SSH client included, as an ES module without CommonJS globals', () => {
    // A journal that is not this job's: post loads the whole undo path (and ssh2's asm.js, which reads `__dirname`),
    // then refuses to touch anything, with a warning and exit code 0.
    const dir = mkdtempSync(join(tmpdir(), 'nix-offload-post-'))
    try {
      const ran = spawnSync(process.execPath, [join(ROOT, 'dist', 'post', 'index.js')], {
        cwd: dir,
        env: {
          PATH: process.env.PATH,
          RUNNER_TEMP: dir,
          STATE_journal: '{"asRoot":false,"undo":[{"kind":"x"}]}'
        },
        encoding: 'utf8'
      })
      expect(ran.stderr).not.toMatch(/ReferenceError/)
      expect(ran.status, ran.stderr).toBe(0)
      expect(ran.stdout).toMatch(/^::warning::nix-offload did not undo anything/m)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('carry no Windows binary: the action runs on Linux and macOS runners only', () => {
    const files = readdirSync(join(ROOT, 'dist'), { recursive: true, encoding: 'utf8' })
    expect(files.length).toBeGreaterThan(0)
    expect(files.filter(name => name.toLowerCase().endsWith('.exe'))).toEqual([])
    // ncc copies ssh2's pagent.exe beside the bundles; `npm run bundle` removes it after bundling.
    expect(JSON.parse(read('package.json')).scripts.bundle).toBe('bash scripts/bundle.sh')
    expect(read('scripts', 'bundle.sh')).toMatch(/^rm -f dist\/\*\/pagent\.exe$/m)
  })

  it('are made from a source that never asks core for an OIDC token', () => {
    const sources = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter(name =>
      name.endsWith('.ts')
    )
    for (const name of sources) expect(read('src', name), name).not.toMatch(/getIDToken/)
  })
})
