import * as core from '@actions/core'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { runNixBuild } from '../../../src/nix/build.js'
import { NixLogReader } from '../../../src/nix/ledger.js'
import { ActivityType, isStorePath, LEVEL_INFO, ResultType, storeDirOf } from '../../../src/nix/nix-log.js'
import { builderPathInfo } from '../../../src/nix/store-proof.js'
import { narSizes } from '../../../src/nix/store-proof.js'

vi.mock('@actions/core', async importOriginal => ({
  ...(await importOriginal<typeof import('@actions/core')>()),
  info: vi.fn(),
  warning: vi.fn()
}))

const GOOD_DRV = '/nix/store/5lkjfcim9xsbc9lbjpisbj34055zlj7g-lab-check-2154016889.drv'
const GOOD_OUT = '/nix/store/5dvfbrk5f9h90g6k9xzs2rkjbwlff0cp-bench-b48ef7c693ae-10'
const STORE = 'ssh-ng://nixbuilder@nix-offload-abc123-1'

/** What a hostile builder may name as a store path, to reach the runner's `nix` as an option or outside the store. */
const HOSTILE = [
  '--option',
  '--expr',
  '--option allowed-uris *',
  '/nix/store/../etc/shadow',
  '/nix/store/5lkjfcim9xsbc9lbjpisbj34055zlj7g-a b.drv',
  '/nix/store/5lkjfcim9xsbc9lbjpisbj34055zlj7g-a\nb.drv',
  '/nix/store/5lkjfcim9xsbc9lbjpisbj34055zlj7g-x/../../etc',
  '/nix/store/5lkjfcim9xsbc9lbjpisbj34055zlj7g-.hidden',
  '/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-e-is-not-base-32',
  '/nix/store/short-hash',
  '/nix/store/',
  '/nix/storeX/5lkjfcim9xsbc9lbjpisbj34055zlj7g-a',
  'nix/store/5lkjfcim9xsbc9lbjpisbj34055zlj7g-relative',
  ''
]

const dirs: string[] = []
afterEach(() => {
  vi.mocked(core.info).mockClear()
  vi.mocked(core.warning).mockClear()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** Stand-ins on PATH for `name`: each records its argument words, one a line, and prints `stdout`. */
function fakes(answers: Record<string, { code: number; stdout?: string; stderr?: string }>) {
  const dir = mkdtempSync(join(tmpdir(), 'nix-offload-hostile-'))
  dirs.push(dir)
  for (const [name, answer] of Object.entries(answers)) {
    writeFileSync(join(dir, `${name}.out`), answer.stdout ?? '')
    writeFileSync(join(dir, `${name}.err`), answer.stderr ?? '')
    writeFileSync(
      join(dir, name),
      `#!/bin/sh\nprintf '%s\\n' "$@" > ${dir}/${name}.args\n` +
        `cat ${dir}/${name}.err >&2\ncat ${dir}/${name}.out\nexit ${answer.code}\n`
    )
    chmodSync(join(dir, name), 0o755)
  }
  return {
    env: { PATH: `${dir}:/usr/bin:/bin`, NIX_SSHOPTS: '-F /tmp/nix-offload-abc123/ssh_config' },
    args: (name: string): string => readFileSync(join(dir, `${name}.args`), 'utf8')
  }
}

const line = (event: Record<string, unknown>): string => `@nix ${JSON.stringify(event)}`

describe('isStorePath', () => {
  it("takes Nix's store paths: base-32 hash, a dash, a name of Nix's characters", () => {
    expect(isStorePath(GOOD_DRV)).toBe(true)
    expect(isStorePath(GOOD_OUT)).toBe(true)
    expect(isStorePath('/nix/store/00000000000000000000000000000000-a+b-c_d.e?f=g')).toBe(true)
  })

  it('refuses options, paths outside the store, and names with spaces, newlines or slashes', () => {
    for (const path of HOSTILE) expect(isStorePath(path), JSON.stringify(path)).toBe(false)
  })

  it('takes the store directory the runner names with NIX_STORE_DIR, and only that one', () => {
    const storeDir = storeDirOf({ NIX_STORE_DIR: '/opt/store' })
    expect(storeDir).toBe('/opt/store')
    expect(isStorePath('/opt/store/5lkjfcim9xsbc9lbjpisbj34055zlj7g-x', storeDir)).toBe(true)
    expect(isStorePath(GOOD_OUT, storeDir)).toBe(false)
    expect(storeDirOf({ NIX_STORE_DIR: '--option' })).toBe('/nix/store')
    expect(storeDirOf({})).toBe('/nix/store')
  })
})

describe('NixLogReader with a hostile builder log', () => {
  it('keeps no build, copy or failure of a path that is no store path, and counts them for one warning', () => {
    const reader = new NixLogReader(() => undefined)
    let id = 1
    for (const path of HOSTILE) {
      reader.readLine(
        line({
          action: 'start',
          id: id++,
          level: LEVEL_INFO,
          type: ActivityType.Build,
          text: '',
          fields: [path, STORE]
        })
      )
      reader.readLine(
        line({
          action: 'start',
          id: id++,
          level: LEVEL_INFO,
          type: ActivityType.CopyPath,
          text: '',
          fields: [path, STORE, 'daemon']
        })
      )
    }
    reader.readLine(
      line({
        action: 'start',
        id: 999,
        level: LEVEL_INFO,
        type: ActivityType.Build,
        text: '',
        fields: [GOOD_DRV, STORE]
      })
    )
    reader.readLine(
      line({ action: 'msg', level: 0, msg: "error: builder for '/nix/store/../etc/x.drv' failed" })
    )
    reader.readLine(line({ action: 'result', id: 999, type: ResultType.BuildLogLine, fields: ['--option'] }))
    expect(reader.ledger.records().map(record => record.drvPath)).toEqual([GOOD_DRV])
    expect(reader.copyLedger.records()).toEqual([])
    const warning = reader.paths.warning("Nix's log") ?? ''
    expect(warning).toContain(`named ${HOSTILE.length * 2 + 1} store path(s)`)
    expect(warning).toContain('"--option"')
  })

  it('quotes a rejected path made harmless to print', () => {
    const reader = new NixLogReader(() => undefined)
    const forged = '/nix/store/x\r::error title=INJECTED::forged\n::add-mask::x'
    reader.readLine(
      line({
        action: 'start',
        id: 1,
        level: LEVEL_INFO,
        type: ActivityType.Build,
        text: '',
        fields: [forged, STORE]
      })
    )
    const warning = reader.paths.warning("Nix's log") ?? ''
    expect(warning).not.toMatch(/[\r\n]/)
    expect(warning).not.toContain('::')
  })
})

describe("the proof's commands, given a hostile builder's paths", () => {
  it('ask about store paths only, all of them after `--`, and believe no answer about another path', async () => {
    const answer = JSON.stringify({
      [GOOD_OUT]: { narSize: 1, ultimate: true, deriver: '--expr' },
      '--option': { narSize: 2, ultimate: true }
    })
    const run = fakes({ ssh: { code: 0, stdout: answer }, nix: { code: 1 } })
    const infos = await builderPathInfo(
      { implementation: 'nix', version: '2.34.8' },
      STORE,
      [...HOSTILE, GOOD_OUT],
      run.env
    )
    expect(infos).toEqual([{ path: GOOD_OUT, narSize: 1, ultimate: true }])
    const remote = run.args('ssh').trimEnd().split('\n').at(-1) ?? ''
    expect(remote.endsWith(`'--json' '--' '${GOOD_OUT}'`)).toBe(true)
  })

  it('fall back over ssh-ng with the paths after `--`', async () => {
    const run = fakes({ ssh: { code: 255 }, nix: { code: 0, stdout: '{}' } })
    await builderPathInfo({ implementation: 'nix', version: '2.8.0' }, STORE, [...HOSTILE, GOOD_OUT], run.env)
    expect(run.args('nix').trimEnd().split('\n').slice(-2)).toEqual(['--', GOOD_OUT])
  })

  it('size store paths only, after `--`', async () => {
    const run = fakes({ 'nix-store': { code: 0, stdout: '7\n' } })
    const sizes = await narSizes([...HOSTILE, GOOD_OUT], run.env)
    expect(run.args('nix-store')).toBe(`--query\n--size\n--\n${GOOD_OUT}\n`)
    expect([...sizes]).toEqual([[GOOD_OUT, 7]])
  })
})

describe('runNixBuild, given a hostile log and out paths', () => {
  it('keeps the store paths of `--json`, and warns once of the rest', async () => {
    const json = JSON.stringify([
      { drvPath: GOOD_DRV, outputs: { out: GOOD_OUT, dev: '--option', lib: '/nix/store/../etc' } }
    ])
    const log = line({
      action: 'start',
      id: 1,
      level: LEVEL_INFO,
      type: ActivityType.Build,
      text: '',
      fields: ['--expr', STORE]
    })
    const run = fakes({ nix: { code: 0, stdout: json, stderr: `${log}\n` } })
    const outcome = await runNixBuild(['build'], run.env)
    expect(outcome.outPaths).toEqual([GOOD_OUT])
    expect(outcome.builds).toEqual([])
    const warnings = vi.mocked(core.warning).mock.calls.map(([message]) => String(message))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain('3 store path(s)')
  })
})
