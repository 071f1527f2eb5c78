import { spawnSync } from 'node:child_process'
import { appendFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const ROOT = join(import.meta.dirname, '..', '..')
const STAGES = ['base', 'inputs', 'nix', 'diagnosis', 'agent', 'runner', 'builders', 'report', 'canary']

/** Runs the lint's dependency rules over a copy of src/ with `change` applied; returns the violations' lines. */
function violations(change: (src: string) => void = () => undefined): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'nix-offload-arch-'))
  dirs.push(dir)
  cpSync(join(ROOT, 'src'), join(dir, 'src'), { recursive: true })
  for (const file of ['tsconfig.json', '.dependency-cruiser.cjs']) cpSync(join(ROOT, file), join(dir, file))
  change(join(dir, 'src'))
  const result = spawnSync(
    join(ROOT, 'node_modules/.bin/depcruise'),
    ['src', '--config', '.dependency-cruiser.cjs'],
    {
      cwd: dir,
      encoding: 'utf8'
    }
  )
  return result.stdout.split('\n').filter(line => line.trim().startsWith('error'))
}

const dirs: string[] = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describe('the stages of src/', () => {
  it('are the folders the dependency rules name, and the rules hold today', () => {
    const folders = readdirSync(join(ROOT, 'src'), { withFileTypes: true })
      .filter(entry => entry.isDirectory())
      .map(entry => entry.name)
    expect(folders.sort()).toEqual([...STAGES].sort())
    expect(violations()).toEqual([])
  })

  it("are the README's map: each folder, in order, with the stages it may import", () => {
    const rows = readFileSync(join(ROOT, 'README.md'), 'utf8')
      .split('\n')
      .map(line => /^\| `([a-z]+)\/` +\|[^|]*\| ([^|]*?) +\|$/.exec(line))
      .filter(match => match !== null)
      .map(([, folder = '', imports = '']) => ({ folder, imports }))
    expect(rows.map(row => row.folder)).toEqual(STAGES)
    for (const [index, row] of rows.entries()) {
      expect(row.imports, row.folder).toBe(index === 0 ? '—' : STAGES.slice(0, index).join(', '))
    }
    expect(readFileSync(join(ROOT, '.dependency-cruiser.cjs'), 'utf8')).toContain(
      `const STAGES = [${STAGES.map(stage => `'${stage}'`).join(', ')}]`
    )
  })

  it('stay small: at most ten files a folder, at most 400 lines a file', () => {
    for (const stage of STAGES) {
      const files = readdirSync(join(ROOT, 'src', stage))
      expect(files.length, stage).toBeLessThanOrEqual(10)
      for (const file of files) {
        const lines = readFileSync(join(ROOT, 'src', stage, file), 'utf8').split('\n').length
        expect(lines, `${stage}/${file}`).toBeLessThanOrEqual(400)
      }
    }
  })

  it('refuse an import from a stage above (negative control)', () => {
    const found = violations(src =>
      appendFileSync(join(src, 'nix/build.ts'), "\nexport * from '../report/index.js'\n")
    )
    expect(found.join('\n')).toContain('nix-imports-no-stage-above')
  }, 30_000)

  it('refuse a deep import into another stage (negative control)', () => {
    const found = violations(src =>
      appendFileSync(join(src, 'runner/plan.ts'), "\nexport { parseNixVersion } from '../nix/nix-cli.js'\n")
    )
    expect(found.join('\n')).toContain('other-stages-through-their-index')
  }, 30_000)
})
