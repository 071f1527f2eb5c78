import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { copiesFrom, readOutLinks } from '../../../src/nix/store-build.js'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe('readOutLinks', () => {
  it("reads the links `nix copy -o <dir>/out` makes, in `nix build --json`'s order: installable, then output", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nix-offload-links-'))
    dirs.push(dir)
    // As Nix's createOutLinks names them (seen on 2.26 and 2.34 for two installables): out, out-1, and `-<output>`
    // for every output but `out`. Made in an order that is not the one to read.
    const links: [name: string, target: string][] = [
      ['out-1', '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-second'],
      ['out-dev', '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-first-dev'],
      ['out-10', '/nix/store/kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk-eleventh'],
      ['out', '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-first'],
      ['out-2-man', '/nix/store/cccccccccccccccccccccccccccccccc-third-man'],
      ['out-2', '/nix/store/cccccccccccccccccccccccccccccccc-third']
    ]
    for (const [name, target] of links) symlinkSync(target, join(dir, name))
    expect(await readOutLinks(dir)).toEqual([
      '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-first-dev',
      '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-first',
      '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-second',
      '/nix/store/cccccccccccccccccccccccccccccccc-third-man',
      '/nix/store/cccccccccccccccccccccccccccccccc-third',
      '/nix/store/kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk-eleventh'
    ])
  })
})

describe('copiesFrom: the copy that says the builds in the builder store are over', () => {
  it('is a copy from the builder store, named by its URI or by its scheme alone', () => {
    expect(copiesFrom('ssh-ng://nixbuilder@10.0.0.5', 'ssh-ng://nixbuilder@builder-alias')).toBe(true)
    expect(copiesFrom('ssh-ng://', 'ssh-ng://nixbuilder@builder-alias')).toBe(true)
    expect(copiesFrom('ssh://nixbuilder@10.0.0.5', 'ssh://nixbuilder@builder-alias')).toBe(true)
  })

  it("is not the builder's own substitution from a binary cache, nor an upload from the runner", () => {
    expect(copiesFrom('https://cache.nixos.org', 'ssh-ng://nixbuilder@builder-alias')).toBe(false)
    expect(copiesFrom('http://127.0.0.1:8080', 'ssh-ng://nixbuilder@builder-alias')).toBe(false)
    expect(copiesFrom('daemon', 'ssh-ng://nixbuilder@builder-alias')).toBe(false)
    expect(copiesFrom('local', 'ssh-ng://nixbuilder@builder-alias')).toBe(false)
  })
})
