import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { readOutLinks } from '../../../src/nix/store-build.js'

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
      ['out-1', '/nix/store/bbbb-second'],
      ['out-dev', '/nix/store/aaaa-first-dev'],
      ['out-10', '/nix/store/kkkk-eleventh'],
      ['out', '/nix/store/aaaa-first'],
      ['out-2-man', '/nix/store/cccc-third-man'],
      ['out-2', '/nix/store/cccc-third']
    ]
    for (const [name, target] of links) symlinkSync(target, join(dir, name))
    expect(await readOutLinks(dir)).toEqual([
      '/nix/store/aaaa-first-dev',
      '/nix/store/aaaa-first',
      '/nix/store/bbbb-second',
      '/nix/store/cccc-third-man',
      '/nix/store/cccc-third',
      '/nix/store/kkkk-eleventh'
    ])
  })
})
