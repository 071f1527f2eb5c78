import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  BuildLedger,
  CopyLedger,
  failedDerivations,
  hookPhase,
  NixLogReader
} from '../../../src/nix/ledger.js'
import {
  ActivityType,
  derivationName,
  LEVEL_INFO,
  LEVEL_WARN,
  parseNixLine,
  ResultType,
  stripAnsi
} from '../../../src/nix/nix-log.js'
import { fixtureLines, fixtureLogs } from '../support/fixtures.js'
import { nixLine, stopLine } from '../support/nix-log.js'

const REMOTE_DRV = '/nix/store/5lkjfcim9xsbc9lbjpisbj34055zlj7g-lab-check-2154016889.drv'
const FAILING_DRV = '/nix/store/zsdq1lk5wfch6jy1k3j523lagya65j9y-lab-check-110815869.drv'
const LAB_A = 'ssh-ng://nixbuilder@labA'

/** What a reader leaves behind: all that src/nix/build.ts reports. */
interface Reading {
  printed: string[]
  builds: ReturnType<BuildLedger['records']>
  copies: ReturnType<CopyLedger['records']>
  messages: string[]
  lastLines: Map<string, string[]>
}

/**
 * The plain reading NixLogReader must match: every line parsed, the clock read for every event, where the reader
 * skips progress lines unparsed. It must leave exactly what this leaves. Time is the line number, for both.
 */
function readAsBuildDid(lines: string[]): Reading {
  const ledger = new BuildLedger()
  const copyLedger = new CopyLedger()
  const reading: Reading = { printed: [], builds: [], copies: [], messages: [], lastLines: new Map() }
  for (const [index, line] of lines.entries()) {
    const event = parseNixLine(line)
    if (event === undefined) {
      if (line.trim() !== '') reading.printed.push(line)
      continue
    }
    const now = index + 1
    switch (event.action) {
      case 'start': {
        let relayed = false
        if (event.type === ActivityType.Build) {
          const [drvPath, machine] = event.fields
          if (typeof drvPath === 'string')
            relayed = ledger.startBuild(event.id, drvPath, String(machine ?? ''), now)
        }
        if (event.type === ActivityType.CopyPath) {
          const [path, from, to] = event.fields
          if (typeof path === 'string')
            copyLedger.startCopy(event.id, path, String(from ?? ''), String(to ?? ''), now)
          ledger.startCopy(event.id, String(from ?? ''), String(to ?? ''))
        }
        const phase = event.type === ActivityType.Unknown ? hookPhase(event.text) : undefined
        if (phase !== undefined) ledger.startPhase(event.id, phase.kind, phase.machine, now)
        if (!relayed && event.level <= LEVEL_INFO && event.text !== '') reading.printed.push(event.text)
        break
      }
      case 'stop':
        ledger.stop(event.id, now)
        ledger.stopPhase(event.id, now)
        copyLedger.stop(event.id, now)
        break
      case 'result':
        if (event.type === ResultType.Progress)
          ledger.progress(event.id, Number(event.fields[0] ?? 0), Number(event.fields[1] ?? 0))
        if (event.type === ResultType.BuildLogLine || event.type === ResultType.PostBuildLogLine) {
          const drvPath = ledger.derivationOf(event.id)
          const text = String(event.fields[0] ?? '')
          reading.printed.push(drvPath === undefined ? text : `${derivationName(drvPath)}> ${text}`)
          if (drvPath !== undefined) {
            const kept = reading.lastLines.get(drvPath) ?? []
            kept.push(text)
            if (kept.length > 10) kept.shift()
            reading.lastLines.set(drvPath, kept)
          }
        }
        break
      case 'msg':
        if (event.level <= LEVEL_INFO) reading.printed.push(event.msg)
        if (event.level <= LEVEL_WARN) {
          const plain = stripAnsi(event.msg)
          reading.messages.push(plain)
          if (event.level === 0) for (const drvPath of failedDerivations(plain)) ledger.markFailed(drvPath)
        }
        break
    }
  }
  return { ...reading, builds: ledger.records(), copies: copyLedger.records() }
}

function read(lines: string[]): Reading {
  const printed: string[] = []
  let now = 0
  const reader = new NixLogReader(
    line => printed.push(line),
    () => now
  )
  for (const [index, line] of lines.entries()) {
    now = index + 1
    reader.readLine(line)
  }
  return {
    printed,
    builds: reader.ledger.records(),
    copies: reader.copyLedger.records(),
    messages: reader.messages,
    lastLines: reader.lastLines
  }
}

describe('NixLogReader on the captured Nix 2.8 logs', () => {
  it('leaves exactly what the plain reading leaves, for every captured log', () => {
    for (const name of fixtureLogs()) {
      expect(read(fixtureLines(name)), name).toEqual(readAsBuildDid(fixtureLines(name)))
    }
  })

  it('proves the remote build and names its log lines after the derivation', () => {
    const reading = read(fixtureLines('remote-build-nix-2.8.log'))
    expect(reading.builds.map(build => [build.drvPath, build.machine, build.status])).toEqual([
      [REMOTE_DRV, LAB_A, 'built']
    ])
    expect(reading.printed).toContain('lab-check-2154016889> building 2154016889')
    expect(reading.printed).not.toContain(`building '${REMOTE_DRV}'`)
    expect(reading.copies.map(copy => [copy.from, copy.to])).toEqual([[LAB_A, 'local']])
  })

  it('marks the failed build and keeps its last log lines and error messages', () => {
    const reading = read(fixtureLines('remote-build-fails-nix-2.8.log'))
    expect(reading.builds.map(build => build.status)).toEqual(['failed'])
    expect(reading.lastLines).toEqual(new Map([[FAILING_DRV, ['failing 110815869']]]))
    expect(reading.messages).toHaveLength(2)
  })
})

describe('NixLogReader on generated logs', () => {
  const drvs = ['a', 'b', 'c'].map(name => `/nix/store/${name.repeat(32)}-${name}-1.0.drv`)
  const text = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.constantFrom(
      '"type":105}',
      '{"action":"result","fields":[0,1,1,0],"id":2,"type":105}',
      stopLine(1),
      'größe ✓ 🚀',
      '\u001b[31mred\u001b[0m'
    )
  )
  const id = fc.integer({ min: 1, max: 8 })
  const line = fc.oneof(
    fc
      .record({ id, drv: fc.constantFrom(...drvs), machine: fc.constantFrom('', LAB_A) })
      .map(({ id, drv, machine }) =>
        nixLine({
          action: 'start',
          fields: [drv, machine, 1, 1],
          id,
          level: 3,
          text: `building '${drv}'`,
          type: 105
        })
      ),
    fc
      .record({ id, drv: fc.constantFrom(...drvs) })
      .map(({ id, drv }) =>
        nixLine({ action: 'start', fields: [drv, LAB_A, 'local'], id, level: 3, text: 'copying', type: 100 })
      ),
    fc
      .record({ id, text })
      .map(({ id, text }) => nixLine({ action: 'result', fields: [text], id, type: 101 })),
    fc
      .record({ id, text })
      .map(({ id, text }) => nixLine({ action: 'result', fields: [text], id, type: 107 })),
    fc
      .record({ id, fields: fc.array(fc.nat(), { maxLength: 4 }), type: fc.constantFrom(104, 105, 106) })
      .map(({ id, fields, type }) => nixLine({ action: 'result', fields, id, type })),
    id.map(id => nixLine({ action: 'stop', id })),
    fc
      .record({ level: fc.nat(5), drv: fc.constantFrom(...drvs) })
      .map(({ level, drv }) =>
        nixLine({ action: 'msg', level, msg: `error: builder for '${drv}' failed with exit code 1` })
      ),
    text
  )

  it('leaves exactly what the plain reading leaves, whatever the builds print', () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 60 }), lines => {
        expect(read(lines)).toEqual(readAsBuildDid(lines))
      }),
      { numRuns: 500 }
    )
  })

  it('keeps only the last 10 log lines of a derivation', () => {
    const lines = [
      nixLine({ action: 'start', fields: [drvs[0], '', 1, 1], id: 1, level: 3, text: 'building', type: 105 }),
      ...Array.from({ length: 25 }, (_, n) =>
        nixLine({ action: 'result', fields: [`line ${n}`], id: 1, type: 101 })
      )
    ]
    expect(read(lines).lastLines.get(drvs[0] ?? '')).toEqual(
      Array.from({ length: 10 }, (_, n) => `line ${n + 15}`)
    )
  })
})

describe('failedDerivations', () => {
  it('finds the derivations of "builder for … failed", "build of … on … failed" and "Cannot build …"', () => {
    const other = '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b.drv'
    expect(failedDerivations(`error: builder for '${FAILING_DRV}' failed with exit code 1;`)).toEqual([
      FAILING_DRV
    ])
    expect(failedDerivations(`error: build of '${FAILING_DRV}' on 'ssh://root@b' failed: timeout`)).toEqual([
      FAILING_DRV
    ])
    expect(failedDerivations(`error: Cannot build '${other}'.\n       Reason: builder failed`)).toEqual([
      other
    ])
    expect(
      failedDerivations("error: cannot build on 'ssh-ng://nixbuilder@labA': unexpected end-of-file")
    ).toEqual([])
  })
})
