import { describe, expect, it } from 'vitest'
import { failedDerivations } from '../../../src/nix/ledger.js'
import { BuildLedger } from '../../../src/nix/ledger.js'
import { ActivityType, parseNixLine, ResultType, stripAnsi } from '../../../src/nix/nix-log.js'
import { readFixture } from '../support/fixtures.js'
import { buildLogLine, buildStartLine, stopLine } from '../support/nix-log.js'

const REMOTE_DRV = '/nix/store/5lkjfcim9xsbc9lbjpisbj34055zlj7g-lab-check-2154016889.drv'
const LOCAL_DRV = '/nix/store/fchjlghk56jaclf0ppl93kjh7q8vwflg-lab-check-1361520073.drv'
const FAILING_DRV = '/nix/store/zsdq1lk5wfch6jy1k3j523lagya65j9y-lab-check-110815869.drv'
const LAB_A = 'ssh-ng://nixbuilder@labA'

interface Replay {
  ledger: BuildLedger
  /** Build log lines (result 101) with the derivation the ledger gives their activity. */
  logLines: { drvPath: string | undefined; text: string }[]
  /** Activity ids of actBuild starts the ledger called relayed. */
  relayed: number[]
  /** Error messages (level 0), colours stripped. */
  errors: string[]
}

/** Feeds a log through the ledger the way src/nix/build.ts does; time is the line number. */
function replay(log: string): Replay {
  const result: Replay = { ledger: new BuildLedger(), logLines: [], relayed: [], errors: [] }
  for (const [index, line] of log.split('\n').entries()) {
    const event = parseNixLine(line)
    if (event === undefined) continue
    const now = index + 1
    switch (event.action) {
      case 'start':
        if (event.type === ActivityType.Build) {
          const [drvPath, machine] = event.fields
          if (
            typeof drvPath === 'string' &&
            result.ledger.startBuild(event.id, drvPath, String(machine ?? ''), now)
          ) {
            result.relayed.push(event.id)
          }
        }
        break
      case 'stop':
        result.ledger.stop(event.id, now)
        break
      case 'result':
        if (event.type === ResultType.BuildLogLine || event.type === ResultType.PostBuildLogLine) {
          result.logLines.push({
            drvPath: result.ledger.derivationOf(event.id),
            text: String(event.fields[0] ?? '')
          })
        }
        break
      case 'msg':
        if (event.level === 0) {
          const plain = stripAnsi(event.msg)
          result.errors.push(plain)
          for (const drvPath of failedDerivations(plain)) result.ledger.markFailed(drvPath)
        }
        break
    }
  }
  return result
}

function fixture(name: string): Replay {
  return replay(readFixture(name))
}

describe('BuildLedger on the captured Nix 2.8 logs', () => {
  it('proves the remote build: one record, built on labA, not a local build', () => {
    const { ledger, relayed } = fixture('remote-build-nix-2.8.log')
    // The remote start is line 13 and its stop line 57; the relayed activity stops earlier, on line 43, when the build
    // on the builder is done (Nix 2.8 stops the runner's own only when the whole nix build ends): that ends it.
    expect(ledger.records()).toEqual([
      {
        drvPath: REMOTE_DRV,
        name: 'lab-check-2154016889',
        machine: LAB_A,
        start: 13,
        end: 43,
        status: 'built',
        attempts: 1,
        // The relayed activity, line 33 to 43: the build on the builder, without the copies.
        phases: { remote: { start: 33, end: 43 }, shared: [] }
      }
    ])
    expect(relayed).toEqual([17755394801677])
  })

  it("names the relayed activity's log lines after the derivation", () => {
    const { ledger, logLines } = fixture('remote-build-nix-2.8.log')
    expect(logLines).toEqual([{ drvPath: REMOTE_DRV, text: 'building 2154016889' }])
    expect(ledger.derivationOf(17755394801677)).toBe(REMOTE_DRV)
    expect(ledger.derivationOf(17755394801669)).toBe(REMOTE_DRV)
    expect(ledger.derivationOf(17755394801665)).toBeUndefined()
  })

  it('records the local build with an empty machine', () => {
    const { ledger, relayed, logLines } = fixture('local-build-nix-2.8.log')
    expect(ledger.records()).toEqual([
      {
        drvPath: LOCAL_DRV,
        name: 'lab-check-1361520073',
        machine: '',
        start: 11,
        end: 21,
        status: 'built',
        attempts: 1
      }
    ])
    expect(relayed).toEqual([])
    expect(logLines).toEqual([{ drvPath: LOCAL_DRV, text: 'building 1361520073' }])
  })

  it('marks the remote build that failed as failed, from its error message', () => {
    const { ledger, errors, logLines } = fixture('remote-build-fails-nix-2.8.log')
    expect(ledger.records()).toEqual([
      {
        drvPath: FAILING_DRV,
        name: 'lab-check-110815869',
        machine: LAB_A,
        start: 13,
        end: 43,
        status: 'failed',
        attempts: 1,
        phases: { remote: { start: 33, end: 43 }, shared: [] }
      }
    ])
    expect(logLines).toEqual([{ drvPath: FAILING_DRV, text: 'failing 110815869' }])
    expect(errors).toHaveLength(2)
    expect(errors[0]).toMatch(
      new RegExp(`^error: build of '${FAILING_DRV}' on '${LAB_A}' failed: builder for `)
    )
  })

  it('records nothing when the builder could not be reached or was never asked', () => {
    for (const name of ['host-key-mismatch-nix-2.8.log', 'untrusted-user-nix-2.8.log']) {
      const { ledger, errors } = fixture(name)
      expect(ledger.records(), name).toEqual([])
      expect(errors.at(-1), name).toMatch(/^error: unable to start any build; /)
    }
  })
})

describe('BuildLedger on synthetic logs', () => {
  const A = '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a.drv'
  const B = '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b.drv'
  const M1 = 'ssh-ng://nix@nix-offload-a1b2c3-1'
  const M2 = 'ssh://root@nix-offload-a1b2c3-2'

  it('counts a local fallback after a remote attempt as the final, local build', () => {
    const { ledger, relayed } = replay(
      [buildStartLine(1, A, M1), stopLine(1), buildStartLine(2, A, ''), stopLine(2)].join('\n')
    )
    expect(ledger.records()).toEqual([
      { drvPath: A, name: 'a', machine: '', start: 3, end: 4, status: 'built', attempts: 2 }
    ])
    expect(relayed).toEqual([])
  })

  it('keeps a second attempt unfinished until it stops, even after the first one stopped', () => {
    const { ledger } = replay([buildStartLine(1, A, M1), stopLine(1), buildStartLine(2, A, M2)].join('\n'))
    expect(ledger.records()).toEqual([
      { drvPath: A, name: 'a', machine: M2, start: 3, status: 'unfinished', attempts: 2 }
    ])
  })

  it('tells apart two derivations built at once on two machines, each with its relayed activity', () => {
    const { ledger, logLines, relayed } = replay(
      [
        buildStartLine(1, A, M1),
        buildStartLine(2, B, M2),
        buildStartLine(3, B, ''),
        buildStartLine(4, A, ''),
        buildLogLine(3, 'from b'),
        buildLogLine(4, 'from a'),
        stopLine(4),
        stopLine(3),
        stopLine(2),
        stopLine(1)
      ].join('\n')
    )
    expect(ledger.records()).toEqual([
      {
        drvPath: A,
        name: 'a',
        machine: M1,
        start: 1,
        end: 7,
        status: 'built',
        attempts: 1,
        phases: { remote: { start: 4, end: 7 }, shared: [] }
      },
      {
        drvPath: B,
        name: 'b',
        machine: M2,
        start: 2,
        end: 8,
        status: 'built',
        attempts: 1,
        phases: { remote: { start: 3, end: 8 }, shared: [] }
      }
    ])
    expect(relayed).toEqual([3, 4])
    expect(logLines).toEqual([
      { drvPath: B, text: 'from b' },
      { drvPath: A, text: 'from a' }
    ])
  })

  it('does not mistake a local build of another derivation for a relayed one', () => {
    const { ledger, relayed } = replay(
      [buildStartLine(1, A, M1), buildStartLine(2, B, ''), stopLine(2), stopLine(1)].join('\n')
    )
    expect(ledger.records().map(r => [r.drvPath, r.machine, r.status])).toEqual([
      [A, M1, 'built'],
      [B, '', 'built']
    ])
    expect(relayed).toEqual([])
  })

  it('keeps a failed status when the activity stops afterwards', () => {
    const ledger = new BuildLedger()
    ledger.startBuild(1, A, M1, 100)
    ledger.markFailed(A)
    ledger.stop(1, 250)
    expect(ledger.records()).toEqual([
      { drvPath: A, name: 'a', machine: M1, start: 100, end: 250, status: 'failed', attempts: 1 }
    ])
  })

  it('ignores stops of unknown activities, a second stop, and failures of unknown derivations', () => {
    const ledger = new BuildLedger()
    ledger.startBuild(1, A, '', 100)
    ledger.stop(99, 150)
    ledger.markFailed(B)
    ledger.stop(1, 200)
    ledger.stop(1, 300)
    expect(ledger.records()).toEqual([
      { drvPath: A, name: 'a', machine: '', start: 100, end: 200, status: 'built', attempts: 1 }
    ])
    expect(ledger.derivationOf(99)).toBeUndefined()
  })

  it('says whether a start is relayed, and ends the build when the first of the two stops', () => {
    const ledger = new BuildLedger()
    expect(ledger.startBuild(1, A, M1, 1)).toBe(false)
    expect(ledger.startBuild(2, A, '', 2)).toBe(true)
    ledger.stop(2, 3)
    expect(ledger.records()[0]).toMatchObject({ end: 3, status: 'built', machine: M1 })
    ledger.stop(1, 4)
    expect(ledger.records()[0]?.end).toBe(3)
  })
})
