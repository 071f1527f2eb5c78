import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

/**
 * scripts/changelog-section.sh, which .github/workflows/release.yml runs to make a release's notes, on a sample
 * changelog laid out as CHANGELOG.md is (Keep a Changelog: [Unreleased], version sections, link definitions last).
 */
const ROOT = join(import.meta.dirname, '..', '..')
const SCRIPT = join(ROOT, 'scripts', 'changelog-section.sh')
const dir = mkdtempSync(join(tmpdir(), 'nix-offload-changelog-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const SAMPLE = `# Changelog

Intro, with a [link](https://example.invalid).

## [Unreleased]

### Added

- Not released yet.

## [0.2.0] - 2026-12-01

### Added

- **Two**: a new input.
  Continued on a second line.

### Fixed

- A fix.

## [0.1.01] - 2026-11-15

- Only starts like 0.1.0.

## [0.1.0] - 2026-11-01

### Added

- The first release.


[Unreleased]: https://example.invalid/compare/v0.2.0...main
[0.2.0]: https://example.invalid/releases/tag/v0.2.0
[0.1.0]: https://example.invalid/releases/tag/v0.1.0
`

function section(
  version: string,
  text: string | null = SAMPLE
): { status: number | null; stdout: string; stderr: string } {
  const file = join(dir, `CHANGELOG-${Math.random().toString(36).slice(2)}.md`)
  if (text !== null) writeFileSync(file, text)
  const result = spawnSync('bash', [SCRIPT, version, file], { encoding: 'utf8', timeout: 10_000 })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr.replace(file, 'CHANGELOG.md') }
}

describe('scripts/changelog-section.sh', () => {
  it("prints a version's section, from under its heading to the next heading, without the blank lines around it", () => {
    expect(section('0.2.0')).toEqual({
      status: 0,
      stdout:
        '### Added\n\n- **Two**: a new input.\n  Continued on a second line.\n\n### Fixed\n\n- A fix.\n',
      stderr: ''
    })
  })

  it('stops the last section at the link definitions', () => {
    expect(section('0.1.0').stdout).toBe('### Added\n\n- The first release.\n')
  })

  it('fails, naming the version, when the changelog has no section for it', () => {
    const result = section('0.3.0')
    expect(result.status).not.toBe(0)
    expect(result.stdout).toBe('')
    expect(result.stderr).toBe("changelog-section: CHANGELOG.md has no '## [0.3.0]' section\n")
    // A heading that only starts like the version's is not its section.
    const prefix = section('0.1.0', SAMPLE.replace('## [0.1.0] - 2026-11-01', '## [0.0.9] - 2026-11-01'))
    expect(prefix.status).not.toBe(0)
    expect(prefix.stderr).toContain("has no '## [0.1.0]' section")
  })

  it('fails on an empty section, a missing file, and a version that is not X.Y.Z', () => {
    const empty = section(
      '0.2.0',
      SAMPLE.replace(/(## \[0\.2\.0\] - 2026-12-01\n)[^]*?(?=## \[0\.1\.01\])/, '$1\n')
    )
    expect(empty.status).not.toBe(0)
    expect(empty.stderr).toContain("'## [0.2.0]' section is empty")
    const missing = section('0.2.0', null)
    expect(missing.status).not.toBe(0)
    expect(missing.stderr).toMatch(/^changelog-section: there is no /)
    for (const version of ['v0.2.0', '0.2', '0.2.0-rc.1', '01.2.0', 'Unreleased']) {
      const result = section(version)
      expect(result.status, version).not.toBe(0)
      expect(result.stderr, version).toContain('is not a version X.Y.Z')
    }
  })

  it("finds CHANGELOG.md's headings in the sample's form", () => {
    const headings = readFileSync(join(ROOT, 'CHANGELOG.md'), 'utf8').match(/^## \[.*$/gm) ?? []
    expect(headings.length).toBeGreaterThan(0)
    for (const heading of headings)
      expect(heading).toMatch(/^## \[(Unreleased|\d+\.\d+\.\d+)\]( - \d{4}-\d{2}-\d{2})?$/)
  })
})
