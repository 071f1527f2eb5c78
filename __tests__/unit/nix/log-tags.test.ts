import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { endGroup, Phase, startGroup } from '../../../src/base/index.js'
import { machineTag, runNixBuild } from '../../../src/nix/build.js'
import { buildInStores } from '../../../src/nix/store-build.js'
import type { StoreRoute } from '../../../src/nix/strategy.js'
import { readFixture } from '../support/fixtures.js'
import { buildLogLine, buildStartLine, stopLine } from '../support/nix-log.js'
import { settingsWith } from '../support/settings.js'
import { captureStdout, readLayout } from '../support/step-log.js'

const DRV_A = '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello.drv'
const DRV_B = '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-world.drv'
const DRV_C = '/nix/store/cccccccccccccccccccccccccccccccc-stray.drv'
const OUT_A = '/nix/store/dddddddddddddddddddddddddddddddd-hello'
const B1 = 'ssh-ng://nixbuilder@nix-offload-0123456789abcdef-1'
const LABEL = 'nixbuilder@10.0.0.5:22'

const dirs: string[] = []
let stdout: ReturnType<typeof captureStdout>
beforeEach(() => {
  stdout = captureStdout()
})
afterEach(() => {
  stdout.restore()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/**
 * A `nix` on PATH whose `nix build` prints `log` on stderr and `json` on stdout, whose `nix copy` succeeds silently,
 * and which fails anything else (the proof's questions); an `ssh` that fails.
 */
function fakeNix(log: string, json = '[]'): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), 'nix-offload-log-tags-'))
  dirs.push(dir)
  writeFileSync(join(dir, 'build.log'), log)
  writeFileSync(join(dir, 'build.json'), json)
  writeFileSync(
    join(dir, 'nix'),
    `#!/bin/sh\ncase " $* " in\n  *" build "*) cat '${dir}/build.log' >&2; cat '${dir}/build.json' ;;\n` +
      `  *" copy "*) exit 0 ;;\n  *) exit 1 ;;\nesac\n`
  )
  writeFileSync(join(dir, 'ssh'), '#!/bin/sh\nexit 255\n')
  chmodSync(join(dir, 'nix'), 0o755)
  chmodSync(join(dir, 'ssh'), 0o755)
  return { PATH: `${dir}:/usr/bin:/bin` }
}

/** The lines of the build's own log: what came between the stop of commands and their resume. */
function relayed(): string[] {
  const lines = stdout.text().split('\n')
  const start = lines.findIndex(line => line.startsWith('::stop-commands::'))
  const token = lines[start]?.replace('::stop-commands::', '') ?? ''
  return lines.slice(start + 1, lines.indexOf(`::${token}::`))
}

describe('machineTag', () => {
  const names = { labels: new Map([[B1, LABEL]]) }

  it("names a builder as the step names it, the runner not at all, and a builder's store for its own builds", () => {
    expect(machineTag(B1, names)).toBe(`[${LABEL}] `)
    expect(machineTag('', names)).toBe('')
    expect(machineTag('', { local: LABEL })).toBe(`[${LABEL}] `)
  })

  it('never takes its text from the log: a machine the step does not name is "another machine"', () => {
    expect(machineTag('ssh-ng://someone-else', names)).toBe('[another machine] ')
    expect(machineTag('x] ::error::forged\n', names)).toBe('[another machine] ')
  })
})

describe("the hook's build log, tagged by the machine Nix's log says each derivation runs on", () => {
  it("tags the builder's own lines relayed over ssh-ng (a captured Nix 2.8 log) with the builder", async () => {
    const labels = new Map([['ssh-ng://nixbuilder@labA', LABEL]])
    const outcome = await runNixBuild(['build'], fakeNix(readFixture('remote-build-nix-2.8.log')), { labels })
    expect(outcome.exitCode).toBe(0)
    expect(relayed()).toContain(`[${LABEL}] lab-check-2154016889> building 2154016889`)
  })

  it('leaves a build on the runner untagged (a captured Nix 2.8 log)', async () => {
    await runNixBuild(['build'], fakeNix(readFixture('local-build-nix-2.8.log')), {
      labels: new Map([[B1, LABEL]])
    })
    expect(relayed()).toContain('lab-check-1361520073> building 1361520073')
  })

  it('tags each line by its own derivation when builds on a builder, the runner and an unknown machine interleave', async () => {
    const log = [
      buildStartLine(1, DRV_A, B1),
      buildStartLine(2, DRV_B, ''),
      buildStartLine(3, DRV_C, 'ssh-ng://other]::error::forged'),
      buildLogLine(1, 'compiling hello'),
      buildLogLine(2, 'compiling world'),
      buildLogLine(3, 'compiling stray'),
      stopLine(1),
      stopLine(2),
      stopLine(3)
    ].join('\n')
    await runNixBuild(['build'], fakeNix(`${log}\n`), { labels: new Map([[B1, LABEL]]) })
    expect(relayed().filter(line => line.includes('> compiling'))).toEqual([
      `[${LABEL}] hello> compiling hello`,
      'world> compiling world',
      '[another machine] stray> compiling stray'
    ])
  })
})

describe("a build in a builder's own store, tagged with the builder its route went to", () => {
  const route: StoreRoute = {
    index: 0,
    label: LABEL,
    storeUri: B1,
    installables: ['.#hello'],
    derivations: [{ drvPath: DRV_A, outputs: ['out'], order: 0 }],
    maxJobs: 2
  }
  // The builder's daemon builds in its own store: its builds come back with an empty machine name.
  const log = [buildStartLine(7, DRV_A, ''), buildLogLine(7, 'compiling hello'), stopLine(7)].join('\n')

  it("tags its builds with the route's builder, in the group of the route's build", async () => {
    startGroup(Phase.Build)
    const outcome = await buildInStores({
      release: { implementation: 'nix', version: '2.18.1' },
      settings: settingsWith({ strategy: 'remote-store', copyBack: false }),
      routes: [route],
      env: fakeNix(`${log}\n`),
      workDir: tmpdir()
    })
    endGroup()
    expect(outcome.builds.map(build => build.machine)).toEqual([B1])
    expect(relayed()).toContain(`[${LABEL}] hello> compiling hello`)
    const layout = readLayout(stdout.text())
    expect(layout.groups.map(group => group.title)).toEqual([`Build on ${LABEL}`])
  })

  it('copies back in a group of its own after the build, when the build and the copy are two commands', async () => {
    startGroup(Phase.Build)
    const env = fakeNix(`${log}\n`, JSON.stringify([{ drvPath: DRV_A, outputs: { out: OUT_A } }]))
    const outcome = await buildInStores({
      release: { implementation: 'nix', version: '2.18.1' },
      settings: settingsWith({ strategy: 'remote-store', copyBack: true }),
      routes: [route],
      env,
      workDir: tmpdir()
    })
    endGroup()
    expect(outcome.exitCode).toBe(0)
    expect(outcome.copiedBack.get(B1)).toEqual([OUT_A])
    const layout = readLayout(stdout.text())
    expect(layout.groups.map(group => group.title)).toEqual([`Build on ${LABEL}`, `Copy back from ${LABEL}`])
    expect(layout.groups[1]?.lines[0]).toBe(`Copying 1 output(s) back from ${LABEL}: ${OUT_A}`)
  })
})
