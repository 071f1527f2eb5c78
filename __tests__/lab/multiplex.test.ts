import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  builder,
  builderInputs,
  hostPath,
  type Lab,
  loadLab,
  runMain,
  runPost,
  newMasters,
  sshMasters,
  visibleLog,
  numberedDerivations
} from './harness.js'
import { watchFiles, watchMasters } from './setup.js'

const lab: Lab = loadLab()
const a = builder(lab, 'a')
const b = builder(lab, 'b')

/** How many SSH logins the builder's sshd has accepted so far. */
function acceptedLogins(sshdLog: string): number {
  return readFileSync(sshdLog, 'utf8')
    .split('\n')
    .filter(line => line.includes('Accepted publickey')).length
}

/** Several fresh derivations in one file (numberedDerivations), needing `features(index)`. */
function severalDerivations(
  count: number,
  features: (index: number) => string[] = () => []
): { args: string; installables: string; names: string[] } {
  return numberedDerivations(lab, count, { features })
}

describe('multiplexed SSH', () => {
  it('opens one SSH connection per builder for a build of several derivations, and the post step closes it', async () => {
    const drvs = severalDerivations(6)
    const filesKept = watchFiles(lab)
    const mastersBefore = await sshMasters(lab)
    const loginsBefore = acceptedLogins(a.sshdLog)
    const main = await runMain(lab, {
      ...builderInputs(lab, 'a'),
      'max-jobs': '4',
      args: drvs.args,
      installables: drvs.installables
    })
    expect(main.code, visibleLog(main)).toBe(0)
    expect(main.outputs['remote-builds']).toBe('6')
    // One login for the action's own preflight (ssh2), one for the master that every Nix session then shares.
    expect(acceptedLogins(a.sshdLog) - loginsBefore).toBe(2)
    expect(newMasters(mastersBefore, await sshMasters(lab))).toContain('nix-offload-')
    const post = await runPost(lab, main)
    expect(post.code).toBe(0)
    expect(newMasters(mastersBefore, await sshMasters(lab))).toBe('')
    filesKept()
  })

  it('without multiplexing, opens a connection per derivation (the baseline the option removes)', async () => {
    const drvs = severalDerivations(6)
    const noNewMasters = await watchMasters(lab)
    const loginsBefore = acceptedLogins(a.sshdLog)
    const main = await runMain(lab, {
      ...builderInputs(lab, 'a'),
      multiplex: 'false',
      'max-jobs': '4',
      args: drvs.args,
      installables: drvs.installables
    })
    expect(main.code, visibleLog(main)).toBe(0)
    expect(acceptedLogins(a.sshdLog) - loginsBefore).toBeGreaterThanOrEqual(6 + 2)
    await runPost(lab, main)
    await noNewMasters()
  })
})

// On every pair. The slow, sometimes failing runs once seen on the 2.34 runner are gone since every alias pins its
// ControlMaster and ControlPath; they passed 4 times of 4 there in 1.1–6.6 s (the slowest with the hook idling).
describe("the runner's own ssh configuration", () => {
  // A self-hosted runner's root often shares connections for everything; the action's aliases must not follow it.
  const ROOT_CONFIG = 'Host *\n  ControlMaster yes\n  ControlPath /tmp/root-cm-%C\n  ControlPersist 600\n'

  for (const multiplex of ['false', 'true']) {
    it(`with root's Host * ControlMaster yes, multiplex ${multiplex} builds, and nothing of the action's is left`, async () => {
      const sshDir = hostPath(lab, '/root/.ssh')
      mkdirSync(sshDir, { recursive: true, mode: 0o700 })
      writeFileSync(`${sshDir}/config`, ROOT_CONFIG, { mode: 0o600 })
      try {
        const filesKept = watchFiles(lab)
        const noNewMasters = await watchMasters(lab)
        const drvs = severalDerivations(3)
        const main = await runMain(lab, {
          ...builderInputs(lab, 'a'),
          multiplex,
          args: drvs.args,
          installables: drvs.installables
        })
        expect(main.code, visibleLog(main)).toBe(0)
        expect(main.outputs).toMatchObject({ confirmed: 'true', 'remote-builds': '3' })
        const post = await runPost(lab, main)
        expect(post.code).toBe(0)
        filesKept()
        await noNewMasters()
        // No master under root's own ControlPath either: the alias pinned its own (or none).
        const rootMasters = (await import('node:child_process'))
          .execFileSync('sh', ['-c', 'pgrep -af "[r]oot-cm-" || true'])
          .toString()
        expect(rootMasters).toBe('')
      } finally {
        rmSync(sshDir, { recursive: true, force: true })
      }
    })
  }
})

describe('several builders', () => {
  it('routes each derivation to the builder its features demand, with per-builder counts in the summary', async () => {
    // d1, d2 need lab-a and d5 big-parallel, which only builder a offers; d3, d4 need lab-b, only on builder b.
    const drvs = severalDerivations(
      5,
      index => [['lab-a'], ['lab-a'], ['lab-b'], ['lab-b'], ['big-parallel']][index] ?? []
    )
    const main = await runMain(lab, {
      ...builderInputs(lab, 'a'),
      'supported-features': 'benchmark big-parallel lab-a',
      builders: `ssh-ng://${b.user}@${b.host}:${b.port} ${lab.localSystem} - 2 2 benchmark,lab-b -`,
      'known-hosts': `[${b.host}]:${b.port} ${b.hostPublicKey}`,
      args: drvs.args,
      installables: drvs.installables
    })
    expect(main.code, visibleLog(main)).toBe(0)
    const report = JSON.parse(readFileSync(hostPath(lab, main.outputs.report ?? ''), 'utf8')) as {
      derivations: { name: string; builder?: string }[]
    }
    const where = Object.fromEntries(report.derivations.map(d => [d.name, d.builder]))
    const [d1, d2, d3, d4, d5] = drvs.names
    expect(where).toEqual({
      [d1 ?? '']: `127.0.0.1:${a.port}`,
      [d2 ?? '']: `127.0.0.1:${a.port}`,
      [d3 ?? '']: `127.0.0.1:${b.port}`,
      [d4 ?? '']: `127.0.0.1:${b.port}`,
      [d5 ?? '']: `127.0.0.1:${a.port}`
    })
    expect(main.summary).toMatch(/\| `nixbuilder@127\.0\.0\.1:22\d1` \| 3 \| /)
    expect(main.summary).toMatch(/\| `nixbuilder@127\.0\.0\.1:22\d2` \| 2 \| /)
    await runPost(lab, main)
  })
})
