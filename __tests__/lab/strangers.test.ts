import { lstatSync, readlinkSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import {
  freshDerivation,
  hostPath,
  type Lab,
  loadLab,
  runCommandAs,
  runMain,
  runPost,
  visibleLog
} from './harness.js'
import { derivationInputs, watchFiles } from './setup.js'

const lab: Lab = loadLab()

/** The shared files the action edits as root, whose locks once lived at predictable paths in /tmp. */
const SHARED = ['/root/.ssh/config', '/etc/nix/nix.conf', '/etc/nix/nix-offload.machines']
/** Every name in /tmp that the action's lock for a shared file has had, and an agent's temporary directory. */
const planted = SHARED.flatMap(path => [
  `/tmp/nix-offload-lock-${encodeURIComponent(path)}`,
  `/tmp/nix-offload-lock-${encodeURIComponent(path)}.aside`
]).concat(['/tmp/nix-offload', '/tmp/nix-offload-agent'])

/** Runs a shell command as `nobody`, a local user with no rights on anything of the job's. */
async function asStranger(script: string): Promise<void> {
  const result = await runCommandAs(lab, 'root', [
    'setpriv',
    '--reuid=65534',
    '--regid=65534',
    '--clear-groups',
    'sh',
    '-c',
    script
  ])
  if (result.code !== 0) throw new Error(`the stranger's command failed: ${result.stderr}`)
}

/** A symlink to a file root owns, a plain file and a directory, in turns, at every path. */
async function plantEverywhere(): Promise<void> {
  const kinds = ['ln -s /etc/nix/nix.conf', 'sh -c \'echo 1 > "$0"\'', 'mkdir']
  const lines = planted.map((path, index) => `${kinds[index % kinds.length]} '${path}'`)
  await asStranger(lines.join(' && '))
}

afterEach(async () => {
  await runCommandAs(lab, 'root', ['rm', '-rf', ...planted])
})

describe('a stranger on a shared runner', () => {
  it('cannot stop a job or its post step, nor make root write through a symlink, by planting files in /tmp', async () => {
    await plantEverywhere()
    const links = new Map(
      planted
        .filter(path => lstatSync(hostPath(lab, path)).isSymbolicLink())
        .map(path => [path, readlinkSync(hostPath(lab, path))])
    )
    expect(links.size).toBeGreaterThan(0)
    const filesKept = watchFiles(lab)
    const drv = freshDerivation(lab)
    const main = await runMain(lab, derivationInputs(lab, drv))
    expect(main.code, visibleLog(main)).toBe(0)
    expect(main.outputs.confirmed).toBe('true')
    const post = await runPost(lab, main)
    expect(post.code, visibleLog(post)).toBe(0)
    expect(visibleLog(post)).not.toMatch(/::warning::/)
    filesKept()
    // What the stranger planted is as it was: nothing was followed, broken or taken over.
    for (const [path, target] of links) {
      expect(lstatSync(hostPath(lab, path)).isSymbolicLink()).toBe(true)
      expect(readlinkSync(hostPath(lab, path))).toBe(target)
    }
    for (const path of planted) expect(lstatSync(hostPath(lab, path)).uid).toBe(65534)
  })
})
