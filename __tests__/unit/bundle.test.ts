import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const ROOT = join(import.meta.dirname, '..', '..')
const read = (...parts: string[]): string => readFileSync(join(ROOT, ...parts), 'utf8')

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
