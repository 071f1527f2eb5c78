import { describe, expect, it } from 'vitest'
import {
  builderInputs,
  freshDerivation,
  type Lab,
  loadLab,
  runOnHost,
  runPost,
  startMainUntil,
  visibleLog
} from './harness.js'
import { watchFiles, watchMasters } from './setup.js'

const lab: Lab = loadLab()

/**
 * The processes whose command line names `nonce`, on the runner and on the builders alike (the lab's builders run on
 * the host, in namespaces whose processes the host sees): the runner's `nix` and the build's shell on the builder.
 */
async function jobProcesses(nonce: string): Promise<string> {
  return (await runOnHost(['pgrep', '-af', nonce])).stdout.trim()
}

async function waitUntilGone(nonce: string, ms: number): Promise<string> {
  const deadline = Date.now() + ms
  let left = await jobProcesses(nonce)
  while (left !== '' && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 250))
    left = await jobProcesses(nonce)
  }
  return left
}

describe('the post step, after main alone was killed mid-build (SIGKILL, the OOM killer)', () => {
  it.each(['hook', 'remote-store'])(
    'with the %s strategy, stops what main left running, on the runner and the builder',
    async strategy => {
      const filesKept = watchFiles(lab)
      const noNewMasters = await watchMasters(lab)
      const drv = freshDerivation(lab, { seconds: 120 })
      const { child, done } = await startMainUntil(
        lab,
        { ...builderInputs(lab, 'a'), strategy, args: drv.args, installables: 'drv' },
        `building ${drv.nonce}`
      )
      // Main only, not its process group: its `nix`, and the build that `nix` started, keep running.
      child.kill('SIGKILL')
      const main = await done
      expect(main.signal).toBe('SIGKILL')
      expect(await jobProcesses(drv.nonce), 'the runner and builder before post').not.toBe('')

      const post = await runPost(lab, main)
      expect(post.code, visibleLog(post)).toBe(0)
      expect(post.stdout).toMatch(
        /nix-offload: stopped \d+ process\(es\) main left running: .*nix (build|copy) \(pid \d+\)/
      )
      // The builder's daemon interrupts the build once the connection of its client (the runner's `nix`) is gone.
      expect(await waitUntilGone(drv.nonce, 20_000), 'the runner and builder after post').toBe('')
      await noNewMasters()
      filesKept()
    }
  )
})
