import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

/**
 * The matrix's pairs (lab/lib.sh lab_matrix) on a host of each Nix the lab knows (Debian 12's 2.8, Ubuntu 24.04's
 * 2.18), and scripts/version-table.mjs --check on the results such a matrix run leaves, against the README's table:
 * nothing here starts the lab.
 */
const ROOT = join(import.meta.dirname, '..', '..')
const dirs: string[] = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

function pairs(hostNix: string): string[] {
  const result = spawnSync('bash', ['-c', 'source lab/lib.sh && lab_matrix'], {
    cwd: ROOT,
    env: { ...process.env, LAB_HOST_NIX: hostNix },
    encoding: 'utf8'
  })
  expect(result.status, result.stderr).toBe(0)
  return result.stdout.trim().split('\n')
}

/** A results directory as scripts/matrix.sh leaves it, every pair passing unless named in `failing`. */
function results(host: string, entries: string[], failing: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'version-table-'))
  dirs.push(dir)
  const out = join(dir, 'results')
  mkdirSync(out)
  writeFileSync(join(out, 'host.txt'), `${host}\n`)
  for (const entry of entries) {
    const [runner, builder, scope] = entry.split(' ')
    const failed = failing.includes(entry) ? 1 : 0
    writeFileSync(
      join(out, `runner-${runner}-builder-${builder}-${scope}.json`),
      JSON.stringify({ numPassedTests: 10, numFailedTests: failed, numPendingTests: 0, numTodoTests: 0 })
    )
  }
  // --check reads README.md from the working directory: a copy, so that nothing here can change the real one.
  copyFileSync(join(ROOT, 'README.md'), join(dir, 'README.md'))
  return dir
}

function check(dir: string): { status: number | null; output: string } {
  const result = spawnSync('node', [join(ROOT, 'scripts/version-table.mjs'), 'results', '--check'], {
    cwd: dir,
    encoding: 'utf8'
  })
  return { status: result.status, output: result.stdout + result.stderr }
}

describe('the version matrix and the README table, per host', () => {
  it("on Debian 12 (Nix 2.8) the pairs are the matrix's, and the README's table is exactly the run's", () => {
    const debian = pairs('2.8')
    expect(debian).toEqual([
      '2.8 2.8 full',
      '2.34 2.34 full',
      '2.26 2.26 full',
      '2.34 2.8 core',
      '2.8 2.34 core',
      '2.26 2.34 core',
      '2.34 2.26 core'
    ])
    const dir = results('2.8 Debian bookworm', debian)
    const { status, output } = check(dir)
    expect(status, output).toBe(0)
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const table = output.split('\nmatrix:')[0] ?? ''
    expect(readme).toContain(`<!-- version-table:start (scripts/version-table.mjs) -->\n${table}\n`)
  })

  it('on Debian 12 a pair that fails, or one the README has and the run lacks, fails the check', () => {
    const debian = pairs('2.8')
    expect(check(results('2.8 Debian bookworm', debian, ['2.26 2.34 core'])).status).toBe(1)
    expect(check(results('2.8 Debian bookworm', debian.slice(1))).status).toBe(1)
  })

  it("on Ubuntu 24.04 (Nix 2.18) the host's version takes 2.8's place, and the check compares the rows both have", () => {
    const ubuntu = pairs('2.18')
    expect(ubuntu).toEqual([
      '2.18 2.18 full',
      '2.34 2.34 full',
      '2.26 2.26 full',
      '2.34 2.18 core',
      '2.18 2.34 core',
      '2.26 2.34 core',
      '2.34 2.26 core'
    ])
    const { status, output } = check(results('2.18 Ubuntu 24.04', ubuntu))
    expect(status, output).toBe(0)
    expect(output).toContain('| 2.18 (Ubuntu 24.04) | 2.34 (Debian sid) |')
    expect(output).toMatch(/4 rows compared and the same; the rows of Nix 2\.18, not in README\.md:/)
  })

  it('on Ubuntu 24.04 a shared pair that fails, or a shared pair not run, still fails the check', () => {
    const ubuntu = pairs('2.18')
    const failing = check(results('2.18 Ubuntu 24.04', ubuntu, ['2.34 2.26 core']))
    expect(failing.status).toBe(1)
    expect(failing.output).toContain(
      '2.34 → 2.26, offload, configure-only, multiplex, faults, remote-store: README.md has'
    )
    const missing = check(
      results(
        '2.18 Ubuntu 24.04',
        ubuntu.filter(entry => entry !== '2.26 2.26 full')
      )
    )
    expect(missing.status).toBe(1)
    expect(missing.output).toContain('2.26 → 2.26, every lab test: not run')
  })

  it('a host whose own Nix is one the lab runs from a root filesystem is refused', () => {
    const result = spawnSync('bash', ['-c', 'source lab/lib.sh && lab_matrix'], {
      cwd: ROOT,
      env: { ...process.env, LAB_HOST_NIX: '2.26' },
      encoding: 'utf8'
    })
    expect(result.status).not.toBe(0)
    expect(result.stderr).toContain("the host's own Nix is 2.26")
  })
})
