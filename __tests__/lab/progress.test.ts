import { describe, expect, it } from 'vitest'
import {
  builder,
  builderInputs,
  freshDerivation,
  type Lab,
  loadLab,
  runMain,
  runPost,
  visibleLog,
  numberedDerivations
} from './harness.js'
import { derivationInputs } from './setup.js'

const lab: Lab = loadLab()
const b = builder(lab, 'b')

/** Builds run on each builder at once: 2 × 4 = 8, within the 8 build users each lab store has (lab/lib.sh). */
const JOBS = 4

/** `count` fresh derivations d1…dN in one file, each sleeping `seconds` on its builder. */
function sleepingDerivations(count: number, seconds: number): { args: string; installables: string } {
  return numberedDerivations(lab, count, { seconds })
}

/** Both lab builders, `JOBS` builds each: builder a from the host inputs (b1), builder b from `builders` (b2). */
function twoBuilders(): Record<string, string> {
  return {
    ...builderInputs(lab, 'a'),
    'max-jobs': String(JOBS),
    builders: `ssh-ng://${b.user}@${b.host}:${b.port} ${lab.localSystem} - ${JOBS} 1 - -`,
    'known-hosts': `[${b.host}]:${b.port} ${b.hostPublicKey}`
  }
}

function progressLines(log: string): string[] {
  return log.split('\n').filter(line => line.startsWith('progress: '))
}

describe('live progress', () => {
  it('says how far a build of 50 derivations has come, per builder, at most every 15 s', async () => {
    // 50 derivations of 3 s on 8 slots: 7 rounds, some 21 s of building and more with the SSH sessions.
    const drvs = sleepingDerivations(50, 3)
    const started = Date.now()
    const main = await runMain(lab, { ...twoBuilders(), args: drvs.args, installables: drvs.installables })
    try {
      const seconds = (Date.now() - started) / 1000
      const log = visibleLog(main)
      expect(main.code, log).toBe(0)
      expect(main.outputs['remote-builds']).toBe('50')

      const lines = progressLines(log)
      expect(lines.length, log).toBeGreaterThanOrEqual(1)
      expect(lines.length).toBeLessThanOrEqual(Math.floor(seconds / 15))
      // The total is Nix's own count: its "these 50 derivations will be built" (e.g. 2.26, 2.34), or its build activity
      // (2.8).
      for (const line of lines) expect(line).toMatch(/^progress: \d+\/50 derivations built/)
      const built = lines.map(line => Number(/^progress: (\d+)\//.exec(line)?.[1]))
      expect(built).toEqual([...built].sort((x, y) => x - y))
      // Each builder with no more builds running than its max-jobs. (A line may also fall between two rounds, when
      // nothing runs: a 2.34 runner's hook idles some seconds before it hands over the next derivations.)
      for (const [, count] of lines.join('\n').matchAll(/\S+: (\d+) running/g)) {
        expect(Number(count)).toBeGreaterThanOrEqual(1)
        expect(Number(count)).toBeLessThanOrEqual(JOBS)
      }
      expect(lines.join('\n')).not.toMatch(/runner: \d+ running/)
    } finally {
      // Even when a check fails: the next test file must not find this run's block in root's ssh config.
      await runPost(lab, main)
    }
  })

  it('prints none for a build that ends within 15 s', async () => {
    const drv = freshDerivation(lab)
    const main = await runMain(lab, derivationInputs(lab, drv))
    expect(main.code, visibleLog(main)).toBe(0)
    expect(progressLines(visibleLog(main))).toEqual([])
    await runPost(lab, main)
  })
})
