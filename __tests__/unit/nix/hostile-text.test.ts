import * as core from '@actions/core'
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { logInfo, stderrTail } from '../../../src/base/index.js'
import { lastError, runNixBuild } from '../../../src/nix/build.js'
import { ActivityType, LEVEL_INFO, ResultType } from '../../../src/nix/nix-log.js'
import { installableNeeds } from '../../../src/nix/strategy.js'
import { chooseStrategy } from '../../../src/nix/strategy.js'
import { settingsWith } from '../support/settings.js'

/** What a hostile evaluation or builder puts in its strings, to forge workflow commands on the runner. */
const FORGED_SYSTEM = 'x86_64-linux\r::error title=INJECTED::forged by system'
const FORGED_FEATURE = 'kvm\n::add-mask::INJECTED'
const FORGED_NAME = '##[error]INJECTED by name'
const FORGED_STOP = '::stop-commands::INJECTED'
const DRV = '/nix/store/5lkjfcim9xsbc9lbjpisbj34055zlj7g-lab-check.drv'
const STORE = 'ssh-ng://nixbuilder@b1'

const dirs: string[] = []
let written: string[] = []
beforeEach(() => {
  written = []
  vi.spyOn(process.stdout, 'write').mockImplementation(chunk => {
    written.push(String(chunk))
    return true
  })
})
afterEach(() => {
  vi.restoreAllMocks()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** A `nix` on PATH that prints `stderr` and `stdout` (`dryRun` instead for `nix build --dry-run`) and exits 0. */
function fakeNix(stdout: string, stderr: string, dryRun = stdout): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), 'nix-offload-hostile-text-'))
  dirs.push(dir)
  writeFileSync(join(dir, 'out'), stdout)
  writeFileSync(join(dir, 'dry'), dryRun)
  writeFileSync(join(dir, 'err'), stderr)
  writeFileSync(
    join(dir, 'nix'),
    `#!/bin/sh\ncat ${dir}/err >&2\ncase " $* " in *" --dry-run "*) cat ${dir}/dry ;; *) cat ${dir}/out ;; esac\n`
  )
  chmodSync(join(dir, 'nix'), 0o755)
  return { PATH: `${dir}:/usr/bin:/bin` }
}

/**
 * The workflow commands the runner would read in what was written: lines split where it splits them, leading blanks
 * trimmed, and the lines between `::stop-commands::<token>` and `::<token>::` skipped, as it skips them.
 */
function commandsRead(): string[] {
  const commands: string[] = []
  let token: string | undefined
  for (const raw of written.join('').split(/\r\n|\r|\n/)) {
    const line = raw.trimStart()
    if (token !== undefined) {
      if (line === `::${token}::`) token = undefined
      continue
    }
    const stop = /^::stop-commands::(.*)$/.exec(line)
    if (stop !== null) token = stop[1]
    if (line.startsWith('::') || line.includes('##[')) commands.push(line)
  }
  return commands
}

const line = (event: Record<string, unknown>): string => `@nix ${JSON.stringify(event)}`

describe('text from a hostile evaluation and builder, printed by the action', () => {
  it("makes no workflow command of the derivation's system, features and name in the strategy's message", async () => {
    const shown = JSON.stringify({
      [DRV]: { system: FORGED_SYSTEM, env: { requiredSystemFeatures: `${FORGED_FEATURE} ${FORGED_NAME}` } }
    })
    const settings = settingsWith({ strategy: 'auto' })
    const lookup = await installableNeeds(
      { implementation: 'nix', version: '2.8.0' },
      settings,
      fakeNix(shown, '', JSON.stringify([{ drvPath: DRV, outputs: { out: null } }]))
    )
    expect(lookup.needs?.[0]?.system).toBe(FORGED_SYSTEM)
    const builder = {
      index: 0,
      label: 'b1',
      protocol: 'ssh-ng' as const,
      systems: ['x86_64-linux'],
      supportedFeatures: [],
      mandatoryFeatures: [],
      storeUri: 'ssh-ng://nixbuilder@nix-offload-a1b2c3-1',
      maxJobs: 1
    }
    const choice = chooseStrategy({
      settings,
      wantsBuild: true,
      runner: { acceptsUnsignedPaths: true },
      builders: [builder],
      needs: lookup.needs,
      installables: settings.installables
    })
    logInfo(`Strategy: ${choice.strategy}: ${choice.reason}.`)
    expect(() =>
      chooseStrategy({
        settings: { ...settings, strategy: 'remote-store' },
        wantsBuild: true,
        runner: { acceptsUnsignedPaths: true },
        builders: [builder],
        needs: lookup.needs,
        installables: []
      })
    ).toThrow(/no single builder/)
    expect(written.join('')).toContain('x86_64-linux')
    expect(commandsRead()).toEqual([])
  })

  it("makes none of a failed evaluation's last line, and none of a stderr tail", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nix-offload-hostile-fail-'))
    dirs.push(dir)
    writeFileSync(
      join(dir, 'nix'),
      `#!/bin/sh\nprintf 'error: x\\r::error title=INJECTED::y\\n' >&2\nexit 1\n`
    )
    chmodSync(join(dir, 'nix'), 0o755)
    const lookup = await installableNeeds({ implementation: 'nix', version: '2.8.0' }, settingsWith(), {
      PATH: `${dir}:/usr/bin:/bin`
    })
    logInfo(lookup.problem ?? '')
    logInfo(stderrTail(`ok\n${FORGED_STOP}\n${FORGED_FEATURE}\n${FORGED_NAME}`))
    expect(lookup.problem).toContain('evaluating them failed')
    expect(commandsRead()).toEqual([])
  })

  it("keeps a hostile build log's lines inside the stopped section, and its error's first line harmless after it", async () => {
    const log = [
      line({
        action: 'start',
        id: 1,
        level: LEVEL_INFO,
        type: ActivityType.Build,
        text: `building ${FORGED_NAME}`,
        fields: [DRV, STORE]
      }),
      line({
        action: 'result',
        id: 1,
        type: ResultType.BuildLogLine,
        fields: [`${FORGED_STOP}\r::error title=INJECTED::x`]
      }),
      line({ action: 'msg', level: 0, msg: `error: builder for '${DRV}' failed: ${FORGED_SYSTEM}` }),
      `::error title=INJECTED::raw line`
    ].join('\n')
    const outcome = await runNixBuild(['build'], fakeNix('[]', `${log}\n`))
    core.error(lastError(outcome), { title: 'nix-offload: build failed' })
    logInfo(`Last lines: ${[...outcome.lastLines.values()].flat().join('\n')}`)
    const commands = commandsRead()
    expect(commands.map(command => /^::([a-z-]+)/.exec(command)?.[1])).toEqual(['stop-commands', 'error'])
    // The annotation's message may quote the forgery, escaped into its one line; its name and properties may not.
    expect(commands.map(command => command.split('::')[1])).not.toContainEqual(
      expect.stringContaining('INJECTED')
    )
  })
})

describe('the choke point', () => {
  it('is base/step-log.ts: every module prints a line through it', () => {
    const src = join(import.meta.dirname, '..', '..', '..', 'src')
    const files = (dir: string): string[] =>
      readdirSync(dir).flatMap(name => {
        const path = join(dir, name)
        return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : []
      })
    const printing = files(src)
      .filter(path => /core\.info\(|process\.stdout\.write\(|console\.log\(/.test(readFileSync(path, 'utf8')))
      .map(path => path.slice(src.length + 1))
      .sort()
    // agent/main.ts answers its parent in JSON on a pipe, which never reaches the log.
    expect(printing).toEqual(['agent/main.ts', 'base/step-log.ts', 'post.ts'])
  })
})
