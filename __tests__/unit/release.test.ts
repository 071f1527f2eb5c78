import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

/**
 * scripts/release.sh in a throwaway repository of its own (the script, a package.json and a CHANGELOG.md): every
 * refusal happens before the checks, and `--skip-checks` (which refuses `--push`) lets the tagging itself run without
 * npm or the network.
 */
const SCRIPT = join(import.meta.dirname, '..', '..', 'scripts', 'release.sh')
const dirs: string[] = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

/** Git with a fixed identity, and none of this machine's own git configuration (signing, hooks, a default branch). */
const GIT_ENV = {
  ...process.env,
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'release test',
  GIT_AUTHOR_EMAIL: 'release-test@example.invalid',
  GIT_COMMITTER_NAME: 'release test',
  GIT_COMMITTER_EMAIL: 'release-test@example.invalid'
}

function git(dir: string, ...args: string[]): string {
  const result = spawnSync('git', args, { cwd: dir, env: GIT_ENV, encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr}`)
  return result.stdout.trim()
}

function changelog(...versions: string[]): string {
  const sections = versions.map(
    version => `## [${version}] - 2026-12-01\n\n### Added\n\n- Release ${version}.\n`
  )
  return `# Changelog\n\n## [Unreleased]\n\n${sections.join('\n')}\n[Unreleased]: https://example.invalid\n`
}

/** A repository on main with one commit: the script, package.json at `version`, and CHANGELOG.md. */
function repository(version: string, changelogText = changelog(version)): string {
  const dir = mkdtempSync(join(tmpdir(), 'nix-offload-release-'))
  dirs.push(dir)
  git(dir, 'init', '--quiet', '--initial-branch=main')
  mkdirSync(join(dir, 'scripts'))
  copyFileSync(SCRIPT, join(dir, 'scripts', 'release.sh'))
  writeFileSync(join(dir, 'package.json'), `{\n  "name": "nix-offload",\n  "version": "${version}"\n}\n`)
  writeFileSync(join(dir, 'CHANGELOG.md'), changelogText)
  git(dir, 'add', '.')
  git(dir, 'commit', '--quiet', '-m', 'release')
  return dir
}

function release(dir: string, ...args: string[]): { status: number | null; output: string } {
  const result = spawnSync('bash', [join(dir, 'scripts', 'release.sh'), ...args], {
    cwd: dir,
    env: GIT_ENV,
    encoding: 'utf8',
    timeout: 20_000
  })
  return { status: result.status, output: result.stdout + result.stderr }
}

function tags(dir: string): string[] {
  return git(dir, 'tag', '--list').split('\n').filter(Boolean).sort()
}

describe('scripts/release.sh', () => {
  it.each(['1.2', 'v0.1.0', '0.1.0-rc.1', '01.2.3', '0.1.0.1', ''])('refuses the version "%s"', version => {
    const dir = repository('0.1.0')
    const result = release(dir, '--skip-checks', ...(version === '' ? [] : [version]))
    expect(result.status).not.toBe(0)
    expect(result.output).toMatch(version === '' ? /no version given/ : /is not a version X\.Y\.Z/)
    expect(tags(dir)).toEqual([])
  })

  it('refuses a tree with uncommitted changes, and one with untracked files', () => {
    const dir = repository('0.1.0')
    writeFileSync(join(dir, 'package.json'), '{ "version": "0.1.0", "changed": true }\n')
    const changed = release(dir, '--skip-checks', '0.1.0')
    expect(changed.status).not.toBe(0)
    expect(changed.output).toContain('uncommitted changes or untracked files')
    git(dir, 'checkout', '--quiet', '--', 'package.json')
    writeFileSync(join(dir, 'stray.txt'), 'not committed\n')
    const untracked = release(dir, '--skip-checks', '0.1.0')
    expect(untracked.status).not.toBe(0)
    expect(untracked.output).toContain('stray.txt')
    expect(tags(dir)).toEqual([])
  })

  it('refuses a branch other than main', () => {
    const dir = repository('0.1.0')
    git(dir, 'checkout', '--quiet', '-b', 'feature')
    const result = release(dir, '--skip-checks', '0.1.0')
    expect(result.status).not.toBe(0)
    expect(result.output).toContain("on branch 'feature'")
    expect(tags(dir)).toEqual([])
  })

  it('refuses a version with no CHANGELOG.md section, and a package.json of another version', () => {
    const dir = repository('0.1.0', changelog('0.1.0'))
    const missing = release(dir, '--skip-checks', '0.2.0')
    expect(missing.status).not.toBe(0)
    expect(missing.output).toContain("CHANGELOG.md has no '## [0.2.0]' section")
    // A heading that only starts like the version's ([0.1.0] is not [0.1.0x]).
    const other = repository('0.1.0', changelog('0.1.01'))
    expect(release(other, '--skip-checks', '0.1.0').output).toContain("no '## [0.1.0]' section")
    const stale = repository('0.0.9', changelog('0.1.0'))
    const result = release(stale, '--skip-checks', '0.1.0')
    expect(result.status).not.toBe(0)
    expect(result.output).toContain("package.json says version '0.0.9', not 0.1.0")
    expect([...tags(dir), ...tags(other), ...tags(stale)]).toEqual([])
  })

  it('refuses --push without the checks', () => {
    const dir = repository('0.1.0')
    const result = release(dir, '--skip-checks', '--push', '0.1.0')
    expect(result.status).not.toBe(0)
    expect(result.output).toContain('cannot be combined with --push')
    expect(tags(dir)).toEqual([])
  })

  it('tags vX.Y.Z with its changelog section, moves vX forward, and prints the push commands', () => {
    const dir = repository('0.1.0')
    const first = release(dir, '--skip-checks', '0.1.0')
    expect(first.status, first.output).toBe(0)
    expect(first.output).toContain('checks SKIPPED')
    expect(first.output).toContain('git push origin main')
    expect(first.output).toContain('git push origin refs/tags/v0.1.0')
    expect(first.output).toContain('git push --force origin refs/tags/v0')
    expect(tags(dir)).toEqual(['v0', 'v0.1.0'])
    const head = git(dir, 'rev-parse', 'HEAD')
    expect(git(dir, 'rev-parse', 'v0.1.0^{commit}')).toBe(head)
    expect(git(dir, 'rev-parse', 'v0^{commit}')).toBe(head)
    expect(git(dir, 'cat-file', '-t', 'v0.1.0')).toBe('tag')
    expect(git(dir, 'tag', '--list', '--format=%(contents)', 'v0.1.0')).toContain(
      '### Added\n\n- Release 0.1.0.'
    )

    // The same version again is refused; the next one moves v0 and leaves v0.1.0 where it was.
    expect(release(dir, '--skip-checks', '0.1.0').output).toContain('the tag v0.1.0 exists already')
    writeFileSync(join(dir, 'CHANGELOG.md'), changelog('0.1.1', '0.1.0', '0.0.5'))
    writeFileSync(join(dir, 'package.json'), '{\n  "version": "0.1.1"\n}\n')
    git(dir, 'commit', '--quiet', '-am', 'release 0.1.1')
    const second = release(dir, '--skip-checks', '--remote', 'upstream', '0.1.1')
    expect(second.status, second.output).toBe(0)
    expect(second.output).toContain('git push --force upstream refs/tags/v0')
    const next = git(dir, 'rev-parse', 'HEAD')
    expect(git(dir, 'rev-parse', 'v0^{commit}')).toBe(next)
    expect(git(dir, 'rev-parse', 'v0.1.0^{commit}')).toBe(head)

    // v0 never moves back to an older release.
    writeFileSync(join(dir, 'package.json'), '{\n  "version": "0.0.5"\n}\n')
    git(dir, 'commit', '--quiet', '-am', 'an old version')
    const older = release(dir, '--skip-checks', '0.0.5')
    expect(older.status).not.toBe(0)
    expect(older.output).toContain('v0.1.1 is newer than v0.0.5')
    expect(tags(dir)).toEqual(['v0', 'v0.1.0', 'v0.1.1'])
  })
})
