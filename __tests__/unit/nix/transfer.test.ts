import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { CopyRecord } from '../../../src/nix/ledger.js'
import { copiesByBuilder, narSizes, regularFileNarSize } from '../../../src/nix/store-proof.js'

const dir = mkdtempSync(join(tmpdir(), 'nix-offload-transfer-'))
/** The test's own store directory (NIX_STORE_DIR): narSizes takes store paths only. */
const inStore = (hash: string, name: string): string => join(dir, `${hash.repeat(32)}-${name}`)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('regularFileNarSize', () => {
  it('gives what `nix-store --query --size` says of .drv files (Nix 2.8, the lab runner)', () => {
    // Three derivations of the lab's store: their file sizes, and what nix-store said.
    expect(regularFileNarSize(397)).toBe(512)
    expect(regularFileNarSize(383)).toBe(496)
    expect(regularFileNarSize(410)).toBe(528)
    expect(regularFileNarSize(0)).toBe(112)
  })
})

describe('narSizes', () => {
  it('sizes a derivation from its file, with no `nix-store` (none on PATH here)', async () => {
    const drv = inStore('a', 'x.drv')
    writeFileSync(drv, 'D'.repeat(397))
    const sizes = await narSizes([drv], { PATH: '/nonexistent', NIX_STORE_DIR: dir })
    expect(sizes.get(drv)).toBe(512)
  })

  it('asks `nix-store` of an executable or missing .drv and of any other path', async () => {
    const executable = inStore('b', 'exe.drv')
    writeFileSync(executable, 'x')
    chmodSync(executable, 0o755)
    const missing = inStore('c', 'missing.drv')
    const output = inStore('d', 'out')
    mkdirSync(output)
    const drv = inStore('f', 'y.drv')
    writeFileSync(drv, '')
    // A stand-in nix-store: records what it was asked, and answers 7 bytes for each path.
    const bin = join(dir, 'bin')
    mkdirSync(bin)
    const asked = join(dir, 'asked')
    writeFileSync(
      join(bin, 'nix-store'),
      `#!/bin/sh\nshift\nshift\necho "$@" > ${asked}\nfor p; do echo 7; done\n`
    )
    chmodSync(join(bin, 'nix-store'), 0o755)
    const sizes = await narSizes([executable, drv, missing, output], {
      PATH: `${bin}:/usr/bin:/bin`,
      NIX_STORE_DIR: dir
    })
    expect(readFileSync(asked, 'utf8')).toBe(`-- ${executable} ${missing} ${output}\n`)
    expect([...sizes]).toEqual([
      [drv, 112],
      [executable, 7],
      [missing, 7],
      [output, 7]
    ])
  })
})

describe('copiesByBuilder', () => {
  it('gives a copy to the builder whose store URI carries remote-program: Nix names the store without it', () => {
    const one =
      'ssh-ng://nixbuilder@nix-offload-a1b2c3-1?remote-program=/nix/var/nix/profiles/default/bin/nix-daemon'
    const two = 'ssh://root@nix-offload-a1b2c3-2?remote-program=/nix/var/nix/profiles/default/bin/nix-store'
    const copies: CopyRecord[] = [
      { path: '/nix/store/a-in', from: 'local', to: 'ssh-ng://nixbuilder@nix-offload-a1b2c3-1', start: 1 },
      { path: '/nix/store/b-out', from: 'ssh://root@nix-offload-a1b2c3-2', to: 'local', start: 2 }
    ]
    const byBuilder = copiesByBuilder(copies, [one, two])
    expect([...(byBuilder.get(one)?.sent ?? [])]).toEqual(['/nix/store/a-in'])
    expect([...(byBuilder.get(two)?.received ?? [])]).toEqual(['/nix/store/b-out'])
  })
})
