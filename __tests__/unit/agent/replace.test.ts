import {
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { editablePath, readRegular, replaceFile } from '../../../src/agent/replace.js'
import { NOBODY } from '../support/agent.js'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})
/** A directory standing for the Nix store, and one for /etc beside it. */
function place(): { store: string; etc: string } {
  const dir = mkdtempSync(join(tmpdir(), 'agent-replace-'))
  dirs.push(dir)
  mkdirSync(join(dir, 'store'))
  mkdirSync(join(dir, 'etc'))
  return { store: join(dir, 'store'), etc: join(dir, 'etc') }
}
const FIX =
  'The strategy that needs no file of root’s avoids it: `strategy: remote-store`, or make the runner user trusted'

describe('where the agent edits a shared file', () => {
  it('refuses a nix.conf that is a link into the Nix store (nix-darwin, home-manager), naming it and the fix', () => {
    const { store, etc } = place()
    writeFileSync(join(store, 'abc-nix.conf'), 'sandbox = true\n')
    symlinkSync(join(store, 'abc-nix.conf'), join(etc, 'nix.conf'))
    expect(() => editablePath(join(etc, 'nix.conf'), store)).toThrow(
      `${etc}/nix.conf is a symlink (to ${store}/abc-nix.conf, in the Nix store), which nix-offload does not write through. ${FIX}`
    )
  })

  it('refuses any symlink, and a file whose directory is in the store', () => {
    const { store, etc } = place()
    writeFileSync(join(etc, 'real'), '')
    symlinkSync(join(etc, 'real'), join(etc, 'config'))
    expect(() => editablePath(join(etc, 'config'), store)).toThrow(
      /^.*\/config is a symlink \(to .*\/real\), which/
    )
    symlinkSync(store, join(etc, 'nix'))
    expect(() => editablePath(join(etc, 'nix', 'nix.conf'), store)).toThrow(
      `${etc}/nix/nix.conf is in the Nix store (${store}/nix.conf). ${FIX}`
    )
    mkdirSync(join(etc, 'dir'))
    expect(() => editablePath(join(etc, 'dir'), store)).toThrow(`${etc}/dir is not a regular file`)
  })

  it('edits a regular file at its directory’s real path', () => {
    const { store, etc } = place()
    symlinkSync(etc, join(etc, '..', 'etc-link'))
    writeFileSync(join(etc, 'machines'), '')
    expect(editablePath(join(etc, '..', 'etc-link', 'machines'), store)).toBe(join(etc, 'machines'))
    expect(editablePath(join(etc, 'missing'), store)).toBe(join(etc, 'missing'))
  })
})

describe('replacing a file', () => {
  it('renames a new file over it, keeping owner and mode, and leaves nothing beside it', () => {
    const { etc } = place()
    const file = join(etc, 'config')
    writeFileSync(file, 'old', { mode: 0o640 })
    chownSync(file, NOBODY, NOBODY)
    const old = readRegular(file)
    replaceFile(file, 'new', { mode: 0o600, ...(old === undefined ? {} : { old: old.stat }) })
    expect(readFileSync(file, 'utf8')).toBe('new')
    expect(statSync(file)).toMatchObject({ uid: NOBODY, gid: NOBODY })
    expect(statSync(file).mode & 0o7777).toBe(0o640)
    expect(readdirSync(etc)).toEqual(['config'])
  })

  it('reads no file through a symlink', () => {
    const { etc } = place()
    writeFileSync(join(etc, 'real'), 'x')
    symlinkSync(join(etc, 'real'), join(etc, 'link'))
    expect(() => readRegular(join(etc, 'link'))).toThrow(/ELOOP/)
    expect(readRegular(join(etc, 'missing'))).toBeUndefined()
  })
})
