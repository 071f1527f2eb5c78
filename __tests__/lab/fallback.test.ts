import { describe, expect, it } from 'vitest'
import {
  builderCtl,
  builderInputs,
  freshDerivation,
  type Lab,
  loadLab,
  reportOf,
  runMain,
  runPost,
  visibleLog
} from './harness.js'
import { watchFiles } from './setup.js'

const lab: Lab = loadLab()

describe('fallback', () => {
  it('local, with an empty key (a fork’s pull request): builds on the runner, warns, and changes nothing', async () => {
    const drv = freshDerivation(lab)
    const filesKept = watchFiles(lab)
    const main = await runMain(lab, {
      ...builderInputs(lab, 'a'),
      'ssh-private-key': '',
      fallback: 'local',
      args: drv.args,
      installables: 'drv'
    })
    expect(main.code, visibleLog(main)).toBe(0)
    expect(visibleLog(main)).toContain(
      "::warning title=nix-offload%3A fallback to the runner::Building on the runner: 'ssh-private-key' is empty"
    )
    expect(main.outputs).toMatchObject({ confirmed: 'false', 'local-builds': '1', 'remote-builds': '0' })
    expect(reportOf<{ fallback?: string }>(lab, main).fallback).toContain("'ssh-private-key' is empty")
    expect(main.summary).toContain('⚠️ **Built on the runner** (`fallback: local`)')
    filesKept()
    expect((await runPost(lab, main)).code).toBe(0)
    filesKept()
  })

  it('fail (the default), with an empty key: fails before changing anything, naming the input', async () => {
    const filesKept = watchFiles(lab)
    const main = await runMain(lab, {
      ...builderInputs(lab, 'a'),
      'ssh-private-key': '',
      installables: 'drv'
    })
    expect(main.code).toBe(1)
    expect(visibleLog(main)).toMatch(
      /::error title=nix-offload%3A input ssh-private-key::Input 'ssh-private-key': is required/
    )
    filesKept()
  })

  it('local, when every builder fails its preflight: builds on the runner and says which builder and why', async () => {
    await builderCtl(lab, 'stop', 'a')
    try {
      const drv = freshDerivation(lab)
      const filesKept = watchFiles(lab)
      const main = await runMain(lab, {
        ...builderInputs(lab, 'a'),
        fallback: 'local',
        args: drv.args,
        installables: 'drv'
      })
      expect(main.code, visibleLog(main)).toBe(0)
      expect(visibleLog(main)).toMatch(
        /Building on the runner: every builder failed its preflight \(Builder nixbuilder@127\.0\.0\.1:\d+ is unreachable/
      )
      expect(main.outputs).toMatchObject({ confirmed: 'false', 'local-builds': '1' })
      expect((await runPost(lab, main)).code).toBe(0)
      filesKept()
    } finally {
      await builderCtl(lab, 'start', 'a')
    }
  })
})
