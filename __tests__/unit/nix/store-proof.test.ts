import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { BuildRecord } from '../../../src/nix/ledger.js'
import { builderPathInfo, pathInfoRoute, startPathInfo, storeProofs } from '../../../src/nix/store-proof.js'

const OUT = '/nix/store/5dvfbrk5f9h90g6k9xzs2rkjbwlff0cp-bench-b48ef7c693ae-10'
const STORE = 'ssh-ng://nixbuilder@nix-offload-abc123-1'
/** `nix path-info --json` of Nix 2.8 (a list), as the lab's builder printed it, cut to the fields the proof reads. */
const INFO = JSON.stringify([
  {
    path: OUT,
    narSize: 128,
    deriver: `${OUT}.drv`,
    registrationTime: 1764500000,
    ultimate: true,
    valid: true
  }
])

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** A PATH with stand-ins for `ssh` and `nix` that record their arguments and answer as told. */
function fakes(ssh: { code: number; stdout?: string }, nix: { code: number; stdout?: string }) {
  const dir = mkdtempSync(join(tmpdir(), 'nix-offload-store-build-'))
  dirs.push(dir)
  for (const [name, answer] of [
    ['ssh', ssh],
    ['nix', nix]
  ] as const) {
    writeFileSync(
      join(dir, name),
      `#!/bin/sh\nprintf '%s\\n' "$@" > ${dir}/${name}.args\nprintf '%s' '${answer.stdout ?? ''}'\nexit ${answer.code}\n`
    )
    chmodSync(join(dir, name), 0o755)
  }
  return {
    env: { PATH: `${dir}:/usr/bin:/bin`, NIX_SSHOPTS: '-F /tmp/nix-offload-abc123/ssh_config' },
    args: (name: string): string[] =>
      readFileSync(join(dir, `${name}.args`), 'utf8')
        .trimEnd()
        .split('\n')
  }
}

describe('builderPathInfo', () => {
  it("asks the builder's own nix through ssh with the plan's config, each remote word quoted", async () => {
    const run = fakes({ code: 0, stdout: INFO }, { code: 1 })
    const infos = await builderPathInfo({ implementation: 'nix', version: '2.8.0' }, STORE, [OUT], run.env)
    expect(infos).toEqual([
      { path: OUT, narSize: 128, deriver: `${OUT}.drv`, registrationTime: 1764500000, ultimate: true }
    ])
    expect(run.args('ssh')).toEqual([
      '-F',
      '/tmp/nix-offload-abc123/ssh_config',
      'nixbuilder@nix-offload-abc123-1',
      `'nix' '--extra-experimental-features' 'nix-command' 'path-info' '--json' '--' '${OUT}'`
    ])
  })

  it('falls back to nix path-info over ssh-ng when the builder has no nix on PATH, or answers no JSON', async () => {
    for (const ssh of [{ code: 127 }, { code: 0, stdout: 'Welcome to the builder' }]) {
      const run = fakes(ssh, { code: 0, stdout: INFO })
      const infos = await builderPathInfo({ implementation: 'nix', version: '2.34.8' }, STORE, [OUT], run.env)
      expect(infos.map(info => info.path)).toEqual([OUT])
      expect(run.args('nix')).toEqual([
        '--extra-experimental-features',
        'nix-command flakes',
        'path-info',
        '--json',
        '--json-format',
        '1',
        '--store',
        STORE,
        '--',
        OUT
      ])
    }
  })

  /** builderPathInfo of OUT with a path-info started before the question, through a stand-in ssh made by `script`. */
  async function askEarly(script: (dir: string) => string, version: string) {
    const run = fakes({ code: 0 }, { code: 1 })
    const dir = run.env.PATH.split(':')[0] ?? ''
    writeFileSync(join(dir, 'ssh'), `#!/bin/sh\n${script(dir)}`)
    const early = startPathInfo(STORE, run.env)
    const infos = await builderPathInfo({ implementation: 'nix', version }, STORE, [OUT], run.env, { early })
    return { run, dir, infos }
  }

  it('takes the answer of the path-info started before the question, which reads the paths on its stdin', async () => {
    // A builder of Nix 2.19 or later: the stand-in ssh answers once stdin names the path.
    const { run, dir, infos } = await askEarly(
      dir =>
        `printf '%s\\n' "$@" > ${dir}/ssh.args\ncat > ${dir}/ssh.stdin\n` +
        `grep -q '${OUT}' ${dir}/ssh.stdin && printf '%s' '${INFO}'\n`,
      '2.34.8'
    )
    expect(infos.map(info => info.path)).toEqual([OUT])
    expect(run.args('ssh').at(-1)).toBe(
      `'nix' '--extra-experimental-features' 'nix-command' 'path-info' '--json' '--stdin'`
    )
    expect(readFileSync(join(dir, 'ssh.stdin'), 'utf8')).toBe(`${OUT}\n`)
  })

  it('asks as before when the builder refuses --stdin (Nix before 2.19), and a cancelled one ends', async () => {
    const { run, dir, infos } = await askEarly(
      dir =>
        `printf '%s\\n' "$@" >> ${dir}/ssh.calls\ncase "$*" in *--stdin*) cat >/dev/null; exit 1;; esac\n` +
        `printf '%s' '${INFO}'\n`,
      '2.8.0'
    )
    expect(infos.map(info => info.path)).toEqual([OUT])
    const calls = readFileSync(join(dir, 'ssh.calls'), 'utf8')
    expect(calls).toContain(`'--json' '--stdin'`)
    expect(calls).toContain(`'--json' '--' '${OUT}'`)
    // Cancelled before any question, it reads an empty stdin and ends: its answer is none.
    const unasked = startPathInfo(STORE, run.env)
    unasked.cancel()
    expect(await unasked.ask([OUT])).toBeUndefined()
  })

  it('says nothing (and the proof fails) when neither answers', async () => {
    const run = fakes({ code: 255 }, { code: 1 })
    expect(
      await builderPathInfo({ implementation: 'nix', version: '2.8.0' }, 'ssh-ng://u@a', [OUT], run.env)
    ).toEqual([])
  })
})

describe('storeProofs', () => {
  const record = (drvPath: string, status: 'built' | 'failed', machine = STORE): BuildRecord => ({
    drvPath,
    name: drvPath.slice('/nix/store/'.length, -'.drv'.length),
    machine,
    status,
    start: 0,
    attempts: 1
  })

  it('proves a built derivation from the log and the store, and a derivation the store was not asked about from neither', () => {
    const proofs = storeProofs(
      STORE,
      [
        record('/nix/store/a.drv', 'built'),
        record('/nix/store/b.drv', 'built'),
        record('/nix/store/c.drv', 'failed')
      ],
      { problems: new Map([['/nix/store/a.drv', []]]), sizes: new Map() }
    )
    expect(proofs.get('/nix/store/a.drv')).toEqual({ log: true, store: true })
    expect(proofs.get('/nix/store/b.drv')).toEqual({
      log: true,
      store: false,
      problem: "the builder's store was not asked about it"
    })
    expect(proofs.has('/nix/store/c.drv')).toBe(false)
  })

  it('says what the store disagreed with, and a build the log places elsewhere is not proven by the log', () => {
    const proofs = storeProofs(STORE, [record('/nix/store/a.drv', 'built', 'ssh-ng://other')], {
      problems: new Map([['/nix/store/a.drv', ['/nix/store/a-out was copied into it, not built there']]]),
      sizes: new Map()
    })
    expect(proofs.get('/nix/store/a.drv')).toEqual({
      log: false,
      store: false,
      problem: '/nix/store/a-out was copied into it, not built there'
    })
  })
})

describe('builderPathInfo on a builder whose key runs only nix-daemon', () => {
  it('runs no shell command there: the runner asks over ssh-ng at once', async () => {
    const run = fakes({ code: 0, stdout: INFO }, { code: 0, stdout: INFO })
    const infos = await builderPathInfo({ implementation: 'nix', version: '2.8.0' }, STORE, [OUT], run.env, {
      shell: false
    })
    expect(infos.map(info => info.path)).toEqual([OUT])
    expect(() => run.args('ssh')).toThrow()
    expect(run.args('nix')).toContain('--store')
  })
})

describe('pathInfoRoute', () => {
  it('starts nothing on a builder whose key runs only nix-daemon', () => {
    const run = fakes({ code: 0, stdout: INFO }, { code: 0, stdout: INFO })
    expect(pathInfoRoute(STORE, run.env, { start: true, access: 'nix-daemon' })).toEqual({ shell: false })
  })

  it('starts the early path-info on a builder with a shell, when asked to', async () => {
    const run = fakes({ code: 0, stdout: INFO }, { code: 0, stdout: INFO })
    const how = pathInfoRoute(STORE, run.env, { start: true, access: undefined })
    expect(how.shell).toBe(true)
    expect(how.early).toBeDefined()
    how.early?.cancel()
    // Its stand-in ssh must have ended before afterEach removes the directory it writes into.
    await how.early?.ask([])
    expect(run.args('ssh')).toContain(
      `'nix' '--extra-experimental-features' 'nix-command' 'path-info' '--json' '--stdin'`
    )
    expect(pathInfoRoute(STORE, run.env, { start: false, access: 'shell' })).toEqual({ shell: true })
  })
})
