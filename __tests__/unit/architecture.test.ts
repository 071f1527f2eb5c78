import { spawnSync } from 'node:child_process'
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import ts from 'typescript'
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
  }, 30_000)

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

  it('keep every function short: none in src/ runs past 80 lines', () => {
    expect(longFunctions(ROOT)).toEqual([])
  })

  it('measure a function by its lines (negative control: a long one is found)', () => {
    const body = Array.from({ length: 81 }, (_, i) => `  const v${i} = ${i}`).join('\n')
    const dir = mkdtempSync(join(tmpdir(), 'nix-offload-arch-'))
    dirs.push(dir)
    cpSync(join(ROOT, 'src', 'base'), join(dir, 'src', 'base'), { recursive: true })
    writeFileSync(join(dir, 'src', 'base', 'long.ts'), `export function long(): void {\n${body}\n}\n`)
    expect(longFunctions(dir)).toEqual(['src/base/long.ts:1 long (83 lines)'])
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

  it("are the README's import graph: each arrow drawn is an import, and each import between nodes is drawn", () => {
    const drawn = drawnImports(readFileSync(join(ROOT, 'README.md'), 'utf8'))
    for (const unit of drawn.nodes) expect(existsSync(join(ROOT, 'src', unit)), unit).toBe(true)
    expect([...drawn.edges].sort()).toEqual([...realImports()].sort())
  }, 30_000)
})

/**
 * A node of the README's map: a folder of src/ (`runner` is src/runner/) or a module at the top of src/ (`store_early`
 * is src/store-early.ts: Mermaid ids take `_`, file names `-`). Answers the path under src/ it names.
 */
function drawnUnit(id: string): string {
  const name = id.replaceAll('_', '-')
  return STAGES.includes(name) ? name : `${name}.ts`
}

/**
 * The nodes and arrows of the Mermaid block under "How it works". The block's convention: a line is `id`, or
 * `id --> id & id …` (the first imports the others), each id optionally followed by its `["label"]`; `flowchart` and
 * `%%` comments aside, any other line fails the test, so that no arrow goes unchecked.
 */
function drawnImports(readme: string): { nodes: Set<string>; edges: Set<string> } {
  const section = readme.slice(readme.indexOf('## How it works'))
  const block = /```mermaid\n([\s\S]*?)```/.exec(section)?.[1] ?? ''
  const nodes = new Set<string>()
  const edges = new Set<string>()
  for (const raw of block.split('\n')) {
    const line = raw.replace(/\["[^"]*"\]/g, '').trim()
    if (line === '' || line.startsWith('flowchart ') || line.startsWith('%%')) continue
    const match = /^([a-z_]+)(?:\s*-->\s*([a-z_]+(?:\s*&\s*[a-z_]+)*))?$/.exec(line)
    expect(match, `README map line not in the convention: ${raw}`).not.toBeNull()
    const [, from = '', to] = match ?? []
    nodes.add(drawnUnit(from))
    for (const id of to?.split(/\s*&\s*/) ?? []) {
      nodes.add(drawnUnit(id))
      edges.add(`${drawnUnit(from)} -> ${drawnUnit(id)}`)
    }
  }
  return { nodes, edges }
}

/** Every import between two different nodes (folders or top-level modules of src/), as dependency-cruiser finds them. */
function realImports(): Set<string> {
  const result = spawnSync(
    join(ROOT, 'node_modules/.bin/depcruise'),
    ['src', '--config', '.dependency-cruiser.cjs', '--output-type', 'json'],
    { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }
  )
  const cruise = JSON.parse(result.stdout) as {
    modules: { source: string; dependencies: { resolved: string }[] }[]
  }
  const unit = (path: string): string | undefined =>
    /^src\/([^/]+\/|[^/]+\.ts$)/.exec(path)?.[1]?.replace(/\/$/, '')
  const edges = new Set<string>()
  for (const module of cruise.modules) {
    const from = unit(module.source)
    for (const dependency of module.dependencies) {
      const to = unit(dependency.resolved)
      if (from !== undefined && to !== undefined && from !== to) edges.add(`${from} -> ${to}`)
    }
  }
  return edges
}

/** Every function, method and arrow function under `root`/src longer than 80 lines, as `file:line name (N lines)`. */
function longFunctions(root: string): string[] {
  const found: string[] = []
  const files = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' }).filter(file =>
    file.endsWith('.ts')
  )
  for (const file of files) {
    const path = join('src', file)
    const source = ts.createSourceFile(
      path,
      readFileSync(join(root, path), 'utf8'),
      ts.ScriptTarget.Latest,
      true
    )
    const visit = (node: ts.Node): void => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
        const first = source.getLineAndCharacterOfPosition(node.getStart()).line
        const lines = source.getLineAndCharacterOfPosition(node.getEnd()).line - first + 1
        const name = ts.getNameOfDeclaration(node as ts.SignatureDeclaration)?.getText() ?? '(anonymous)'
        if (lines > 80) found.push(`${path}:${first + 1} ${name} (${lines} lines)`)
      }
      ts.forEachChild(node, visit)
    }
    visit(source)
  }
  return found.sort()
}
