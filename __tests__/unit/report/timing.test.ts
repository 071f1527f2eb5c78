import { describe, expect, it } from 'vitest'
import { type BuildRecord, NixLogReader } from '../../../src/nix/ledger.js'
import { derivationTiming, offloadOverhead } from '../../../src/report/timing.js'
import { fixtureLines } from '../support/fixtures.js'
import {
  buildStartLine,
  copyPathLine,
  copyProgressLine,
  hookPhaseLine,
  stopLine
} from '../support/nix-log.js'

const MACHINE = 'ssh-ng://nixbuilder@b1'
const DRV_A = '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-alpha.drv'
const DRV_B = '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-beta.drv'
const INPUT = '/nix/store/cccccccccccccccccccccccccccccccc-input'
const OUT_A = '/nix/store/dddddddddddddddddddddddddddddddd-alpha'

/** Reads the lines with a clock that steps 10 ms at each start and stop the reader stamps. */
function read(lines: readonly string[]): BuildRecord[] {
  let now = 0
  const reader = new NixLogReader(
    () => undefined,
    () => (now += 10)
  )
  for (const line of lines) reader.readLine(line)
  return reader.ledger.records()
}

function only(records: BuildRecord[]): BuildRecord {
  expect(records).toHaveLength(1)
  const [record] = records
  if (record === undefined) throw new Error('no record')
  return record
}

describe('time per derivation, from captured logs', () => {
  it.each(['2.26', '2.34'])(
    'times each phase of a remote build on Nix %s, with the bytes brought back',
    version => {
      const timing = derivationTiming(only(read(fixtureLines(`remote-build-nix-${version}.log`))), false)
      // Stamps 100 hook start, 130–160 upload ("copying 0 paths"), 220–230 the builder's own build, 270–320 download.
      expect(timing).toEqual({
        uploadMs: 30,
        uploadBytes: 0,
        waitMs: 90,
        buildMs: 10,
        downloadMs: 50,
        downloadBytes: 128
      })
    }
  )

  it('leaves the bytes unknown on Nix 2.8, whose copies report no progress', () => {
    const timing = derivationTiming(only(read(fixtureLines('remote-build-nix-2.8.log'))), false)
    expect(timing).toEqual({ uploadMs: 30, uploadBytes: 0, waitMs: 90, buildMs: 10, downloadMs: 50 })
  })

  it('counts an input sent to a builder that Nix 2.26 names only "ssh-ng://"', () => {
    for (const version of ['2.26', '2.34']) {
      const records = read(fixtureLines(`builder-user-untrusted-local-input-nix-${version}.log`))
      const remote = only(records.filter(record => record.machine !== ''))
      expect(remote.phases?.upload?.bytes).toBe(136)
      // The upload failed: the builder never started it, so neither its wait nor its build is known.
      expect(derivationTiming(remote, false)).toEqual({ uploadMs: 50, uploadBytes: 136 })
    }
  })

  it('gives a build on the runner no copy and no wait', () => {
    const timing = derivationTiming(only(read(fixtureLines('local-build-nix-2.8.log'))), false)
    expect(timing).toEqual({
      uploadMs: 0,
      uploadBytes: 0,
      waitMs: 0,
      buildMs: 10,
      downloadMs: 0,
      downloadBytes: 0
    })
  })

  it('says shared for the copies of a build in the builder store, and times the build itself', () => {
    const record = only(read(fixtureLines('remote-build-nix-2.34.log')))
    expect(derivationTiming(record, true)).toEqual({ shared: ['upload', 'download'], buildMs: 130 })
  })
})

describe('time per derivation, from made-up logs', () => {
  it('adds the bytes of every copy in an upload, and sums the figures', () => {
    const records = read([
      buildStartLine(1, DRV_A, MACHINE),
      hookPhaseLine(2, 'upload', MACHINE),
      copyPathLine(3, INPUT, 'local', MACHINE),
      copyProgressLine(3, 500, 1000),
      copyProgressLine(3, 1000, 1000),
      stopLine(3),
      copyPathLine(4, `${INPUT}-2`, 'local', MACHINE),
      copyProgressLine(4, 24, 24),
      stopLine(4),
      stopLine(2),
      buildStartLine(5, DRV_A, ''),
      stopLine(5),
      hookPhaseLine(6, 'download', MACHINE),
      copyPathLine(7, OUT_A, MACHINE, 'local'),
      copyProgressLine(7, 10, 64),
      stopLine(7),
      stopLine(6),
      stopLine(1)
    ])
    const timing = derivationTiming(only(records), false)
    // Stamps: 10 start, 20–70 upload, 80–90 the build there, 100–130 download.
    expect(timing).toEqual({
      uploadMs: 50,
      uploadBytes: 1024,
      waitMs: 20,
      buildMs: 10,
      downloadMs: 30,
      downloadBytes: 64
    })
    expect(offloadOverhead([timing])).toEqual({
      uploadMs: 50,
      waitMs: 20,
      downloadMs: 30,
      buildMs: 10,
      uncounted: 0
    })
  })

  it('marks an upload shared when two builds on the same builder were waiting for theirs', () => {
    const records = read([
      buildStartLine(1, DRV_A, MACHINE),
      buildStartLine(2, DRV_B, MACHINE),
      hookPhaseLine(3, 'upload', MACHINE),
      copyPathLine(4, INPUT, 'local', MACHINE),
      copyProgressLine(4, 100, 100),
      stopLine(4),
      stopLine(3)
    ])
    for (const record of records) {
      expect(record.phases?.shared).toEqual(['upload'])
      expect(derivationTiming(record, false)).toEqual({ shared: ['upload'] })
    }
    expect(offloadOverhead(records.map(record => derivationTiming(record, false))).uncounted).toBe(2)
  })

  it('keeps an upload on another builder apart', () => {
    const records = read([
      buildStartLine(1, DRV_A, MACHINE),
      buildStartLine(2, DRV_B, 'ssh-ng://nixbuilder@b2'),
      hookPhaseLine(3, 'upload', MACHINE),
      stopLine(3)
    ])
    expect(records.map(record => record.phases?.upload)).toEqual([
      { start: 30, end: 40, bytes: 0 },
      undefined
    ])
  })

  it('reads garbage and a log cut mid-build without a crash, and knows nothing it was not told', () => {
    const records = read([
      'not json at all',
      '@nix {"action":"start","id":7,"type":0,"text":"copying dependencies to \'ssh-ng://x\'"}',
      '@nix {"action":"start"',
      hookPhaseLine(9, 'download', MACHINE),
      copyProgressLine(9, 5, 5),
      stopLine(12345),
      buildStartLine(1, DRV_A, MACHINE),
      hookPhaseLine(2, 'upload', MACHINE),
      copyPathLine(3, INPUT, 'local', MACHINE),
      copyProgressLine(3, 40, 100)
    ])
    const timing = derivationTiming(only(records), false)
    expect(timing).toEqual({})
    expect(offloadOverhead([timing])).toEqual({
      uploadMs: 0,
      waitMs: 0,
      downloadMs: 0,
      buildMs: 0,
      uncounted: 1
    })
  })
})

describe('time per derivation without the builder relaying its build (ssh://)', () => {
  it('takes the build to be what lies between the upload and the download', () => {
    const records = read([
      buildStartLine(1, DRV_A, 'ssh://root@b3'),
      hookPhaseLine(2, 'upload', 'ssh://root@b3'),
      stopLine(2),
      hookPhaseLine(3, 'download', 'ssh://root@b3'),
      stopLine(3),
      stopLine(1)
    ])
    // Stamps: 10 start, 20–30 upload, 40–50 download, 60 stop; nothing marks the build's start there: no wait.
    expect(derivationTiming(only(records), false)).toEqual({
      uploadMs: 10,
      uploadBytes: 0,
      buildMs: 10,
      downloadMs: 10,
      downloadBytes: 0
    })
  })
})

describe('time per derivation with two builds on one builder', () => {
  it('gives the download to the build that is done there, not to the one still building', () => {
    const records = read([
      buildStartLine(1, DRV_A, MACHINE),
      hookPhaseLine(2, 'upload', MACHINE),
      stopLine(2),
      buildStartLine(3, DRV_A, ''),
      buildStartLine(4, DRV_B, MACHINE),
      hookPhaseLine(5, 'upload', MACHINE),
      stopLine(5),
      buildStartLine(6, DRV_B, ''),
      stopLine(6),
      hookPhaseLine(7, 'download', MACHINE),
      stopLine(7)
    ])
    const [alpha, beta] = records
    expect(alpha?.phases?.download).toBeUndefined()
    expect(beta?.phases?.download).toEqual({ start: 100, end: 110, bytes: 0 })
    expect(records.map(record => record.phases?.shared)).toEqual([[], []])
  })
})
